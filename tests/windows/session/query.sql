-- Session windows per user with a 2 s gap, in both syntaxes' Flink form.
CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS TO_TIMESTAMP_LTZ(paid_at), WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
WITH ('connector'='filesystem', 'path'='${CASES}/tx.json', 'format'='json', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, total DOUBLE, last_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT user_id, window_start, window_end, COUNT(*), SUM(amount), LAST_VALUE(amount)
FROM TABLE(SESSION(TABLE tx PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '2' SECONDS)) GROUP BY user_id, window_start, window_end;
