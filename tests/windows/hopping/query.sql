-- Hopping windows of 4 s every 2 s (Flink HOP takes the slide first), whole file in one batch.
CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
WITH ('connector'='filesystem', 'path'='${CASES}/tx.json', 'format'='json', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, users BIGINT, total DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT window_start, window_end, COUNT(*), COUNT(DISTINCT user_id), SUM(amount)
FROM TABLE(HOP(TABLE tx, DESCRIPTOR(ts), INTERVAL '2' SECONDS, INTERVAL '4' SECONDS)) GROUP BY window_start, window_end;
