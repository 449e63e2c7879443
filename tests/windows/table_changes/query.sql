-- A non-windowed GROUP BY maintains a table: one updated row per key per micro-batch.
CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE, paid_at VARCHAR)
WITH (connector='filesystem', path='${CASES}/tx.json', format='json', timestamp='paid_at', 'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id VARCHAR, n BIGINT, total DOUBLE, last_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT user_id, COUNT(*), SUM(amount), LATEST_BY_OFFSET(amount) FROM tx GROUP BY user_id HAVING SUM(amount) >= 20;
