-- ksqlDB's own windowed table: the window is not selected (it is part of the key, as
-- WINDOWSTART and WINDOWEND), the aggregates are unnamed (KSQL_COL_0, KSQL_COL_1), and
-- the JSON field names are upper-case, matched to the lower-case columns as ksqlDB does.
CREATE STREAM tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR)
WITH (connector='filesystem', path='${CASES}/tx_upper.json', format='json', timestamp='paid_at', 'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE per_user WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv') AS
SELECT user_id, SUM(amount), COUNT(*)
FROM tx WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY user_id EMIT FINAL;
