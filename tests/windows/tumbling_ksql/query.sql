-- ksqlDB syntax: timestamp= (ISO-8601 with offsets), no watermark delay, a 1 s grace period.
CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE, paid_at VARCHAR)
WITH (connector='filesystem', path='${CASES}/tx.json', format='json', timestamp='paid_at', 'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT user_id, WINDOWSTART, WINDOWEND, SUM(amount), COUNT(*)
FROM tx WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY user_id EMIT FINAL;
