-- EMIT FINAL with 5 s of allowed lateness (Flink): windows fire when the watermark
-- passes their end, stay 5 s longer, and re-emit the corrected row for each late row.
-- Batches of 2 rows, 1 s watermark delay:
--   [0 s, 1 s] wm 0 | [2.5 s, 3 s] wm 2 | [bad, 7 s] wm 6: [0,3) fires 40/3, [3,6) 30/1
--   [2 s, bad time]: [0,3) kept until wm 8 -> 60/4 again | [20 s, 1 s]: 1 s still
--   accepted (wm is 6 during the batch) -> 70/5; wm 19 fires [6,9), drops the rest.
CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/tx.json', 'format'='json', 'scan.batch.max-rows'='2', 'allowed-lateness'='5 s', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT, avg_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;
