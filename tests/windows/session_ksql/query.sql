-- The session case in ksqlDB syntax: WINDOW SESSION with EMIT FINAL, event time from
-- timestamp= with no delay and a 1-minute grace period; the same sessions as the Flink form,
-- but WINDOWEND is the session's last row's time, as ksqlDB (Kafka Streams) defines it
-- (its session-windows.json: rows at 0 and 10000 are the window 0..10000), not Flink's
-- last row + gap.
CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE, paid_at VARCHAR)
WITH (connector='filesystem', path='${CASES}/tx.json', format='json', timestamp='paid_at', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, total DOUBLE, last_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT user_id, WINDOWSTART, WINDOWEND, COUNT(*), SUM(amount), LATEST_BY_OFFSET(amount)
FROM tx WINDOW SESSION (2 SECONDS, GRACE PERIOD 1 MINUTE) GROUP BY user_id EMIT FINAL;
