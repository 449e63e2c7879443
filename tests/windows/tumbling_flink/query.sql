-- Flink window TVF, EMIT FINAL by default, 1 s watermark delay, micro-batches of 2 rows.
CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/tx.json', 'format'='json', 'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT, avg_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;
