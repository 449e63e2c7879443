-- Fraud pipeline, step 3: the alerts (SCENARIOS.md §1). An account that logs in, then logs
-- in from another country less than 5 minutes later with no log-out between, raises one
-- alert on the Kafka topic `alerts` (JSON, keyed by account_id, which 'key.fields' also
-- keeps in the value; a ksqlDB KEY column would be in the record key only).
--
-- Rows are matched per account in event-time order (MATCH_RECOGNIZE sorts them once the
-- watermark has passed them), so lines that arrive out of order within the 5 s watermark
-- delay, or on different partitions, give the same alerts.
--   A        the first login;
--   N*?      any other actions except a log-out, as few as possible (reluctant), so the
--            first login from another country ends the match;
--   B        a login from a country other than A's;
--   WITHIN   B less than 5 minutes after A (SCENARIOS case 3: 420 s apart is no alert).
CREATE STREAM alerts (
    event_id        VARCHAR,
    account_id      INT,
    prev_country    VARCHAR,
    current_country VARCHAR,
    alert_time      TIMESTAMP(3)
) WITH (
    kafka_topic  = '${EDDY_ALERTS_TOPIC:-alerts}',
    value_format = 'JSON',
    'key.fields' = 'account_id',
    partitions   = 4
);

INSERT INTO alerts
SELECT event_id, account_id, prev_country, current_country, alert_time
FROM server_logs
MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY ts
    MEASURES
        B.event_id         AS event_id,
        A.location_country AS prev_country,
        B.location_country AS current_country,
        B.ts               AS alert_time
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE
    DEFINE
        A AS A.event_type = 'login',
        N AS N.event_type <> 'log-out',
        B AS B.event_type = 'login' AND B.location_country <> A.location_country
);
