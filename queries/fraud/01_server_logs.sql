-- Fraud pipeline, step 1: the source stream (SCENARIOS.md §1).
-- One DELIMITED record per account action; event_id is also the Kafka key;
-- event_ts is epoch SECONDS. Eddy creates the topic with 4 partitions if it is missing.
CREATE STREAM server_logs (
    event_id         VARCHAR KEY,
    account_id       INT,
    event_type       VARCHAR,
    location_country VARCHAR,
    event_ts         BIGINT
) WITH (
    kafka_topic  = '${EDDY_SERVER_LOGS_TOPIC:-server-logs}',
    value_format = 'DELIMITED',
    partitions   = 4
);
