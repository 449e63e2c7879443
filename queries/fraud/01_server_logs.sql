-- Fraud pipeline, step 1: the source stream (SCENARIOS.md §1).
-- One DELIMITED record per account action; event_ts is epoch SECONDS. event_id is in
-- each line, so it is a value column (a ksqlDB KEY column is read from the record key). Eddy creates the topic with 4 partitions if it is missing.
-- ts is the event time (a computed column, Flink's TO_TIMESTAMP_LTZ(seconds, 0)); the
-- watermark trails the largest ts seen by 5 seconds, so lines up to 5 s out of order
-- are still matched in event-time order by the alerts query.
CREATE STREAM server_logs (
    event_id         VARCHAR,
    account_id       INT,
    event_type       VARCHAR,
    location_country VARCHAR,
    event_ts         BIGINT,
    ts AS TO_TIMESTAMP_LTZ(event_ts, 0),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    kafka_topic  = '${EDDY_SERVER_LOGS_TOPIC:-server-logs}',
    value_format = 'DELIMITED',
    partitions   = 4
);
