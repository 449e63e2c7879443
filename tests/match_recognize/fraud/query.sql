-- SCENARIOS.md §1 (cases 1-4) and three more, in event-time order, micro-batches of 2 rows.
-- Expected alerts (hand-checked):
--   9726: login RU @282, login IN @283              -> RU -> IN at 14:44:43
--   9727 / 9728: different accounts                -> none
--   9729: RU @1420, IN @1840 (420 s)                -> none
--   9730: RU @1420, log-out @1840, IN @1840         -> none
--   9731: RU, log-out, IN within 20 s               -> none (the log-out ends the session)
--   9732: RU, click DE, login RU, login DE, login FR -> RU -> DE at 15:18:32 (the first login
--         from another country; the match ends there, FR starts a new search alone)
--   9733: US, UK exactly 300 s later                -> none (WITHIN is strict, as in Flink)
--   9734: US, UK 299 s later                        -> US -> UK at 15:39:41
CREATE STREAM server_logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT,
    ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/fraud.csv', 'format'='csv', 'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE alerts (event_id VARCHAR, account_id INT, prev_country VARCHAR, current_country VARCHAR, alert_time TIMESTAMP(3))
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO alerts
SELECT event_id, account_id, prev_country, current_country, alert_time
FROM server_logs
MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY ts
    MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country, B.ts AS alert_time
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE
    DEFINE A AS A.event_type = 'login',
           N AS N.event_type <> 'log-out',
           B AS B.event_type = 'login' AND B.location_country <> A.location_country
);
