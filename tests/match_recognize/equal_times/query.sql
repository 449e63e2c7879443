-- Rows of equal event time keep the file's order, whatever the parallelism (Flink's CEP
-- keeps arrival order within a timestamp; at parallelism 1 that is the file's order).
-- One row per micro-batch, so at parallelism 2 lines 0, 2, 4 are split 0 and 1, 3, 5
-- split 1; ordering ties by split would read account 1 as login RU, login DE, log-out
-- (an alert) and account 2 as login FR, login US (the countries swapped).
-- Expected (file order):
--   1: login RU, log-out, login DE, all at 14:40:00 -> none (the log-out ends the session)
--   2: login US, login FR, log-out, all at 14:41:40 -> US -> FR
CREATE STREAM server_logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT,
    ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/equal_times.csv', 'format'='csv', 'scan.batch.max-rows'='1', 'parallelism'='${PARALLELISM:-1}');
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
