-- ksqlDB hopping windows per user: 4 s every 2 s, the whole file in one batch, a grace
-- period long enough that nothing is late. Each row falls in 2 windows; rows per window
-- in file order give each window's key order (1a, 2b, 3c as they first appear).
CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE, paid_at VARCHAR)
WITH (connector='filesystem', path='${CASES}/tx.json', format='json', timestamp='paid_at', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, total DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT user_id, WINDOWSTART, WINDOWEND, COUNT(*), SUM(amount)
FROM tx WINDOW HOPPING (SIZE 4 SECONDS, ADVANCE BY 2 SECONDS, GRACE PERIOD 1 MINUTE) GROUP BY user_id EMIT FINAL;
