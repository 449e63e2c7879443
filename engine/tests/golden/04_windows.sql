CREATE STREAM transactions (user_id VARCHAR KEY, amount DOUBLE, paid_at VARCHAR)
WITH (kafka_topic='transactions', value_format='json', timestamp='paid_at', partitions=4);
CREATE TABLE transactions_f (
    user_id VARCHAR,
    amount DOUBLE,
    paid_at VARCHAR,
    ts AS TO_TIMESTAMP_LTZ(paid_at),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector'='kafka', 'topic'='transactions', 'format'='json');
CREATE TABLE revenue (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total_amount DOUBLE, transaction_count BIGINT, average_amount DOUBLE, PRIMARY KEY (window_start) NOT ENFORCED)
WITH ('connector'='postgres', 'table-name'='revenue');
CREATE TABLE revenue_append (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total_amount DOUBLE, transaction_count BIGINT, average_amount DOUBLE)
WITH ('connector'='postgres', 'table-name'='revenue_append');
CREATE STREAM user_revenue (user_id VARCHAR KEY, window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT)
WITH (kafka_topic='user-revenue', value_format='json', partitions=1);
CREATE TABLE user_revenue_pg (user_id VARCHAR, window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT, PRIMARY KEY (user_id, window_start) NOT ENFORCED)
WITH ('connector'='postgres')
----
INSERT INTO user_revenue_pg
SELECT user_id, WINDOWSTART, WINDOWEND, SUM(amount), COUNT(*)
FROM transactions
WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 2 SECONDS)
GROUP BY user_id
EMIT CHANGES
----
INSERT INTO user_revenue
SELECT user_id, WINDOWSTART, WINDOWEND, SUM(amount), COUNT(*)
FROM transactions_f
WINDOW TUMBLING (SIZE 3 SECONDS)
GROUP BY user_id
EMIT FINAL
----
INSERT INTO user_revenue
SELECT user_id, window_start, window_end, SUM(amount), COUNT(*)
FROM TABLE(TUMBLE(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
GROUP BY window_start, window_end, user_id
----
INSERT INTO user_revenue
SELECT user_id, TUMBLE_START(ts, INTERVAL '3' SECOND), TUMBLE_END(ts, INTERVAL '3' SECOND), SUM(amount), COUNT(*)
FROM transactions_f
GROUP BY user_id, TUMBLE(ts, INTERVAL '3' SECOND)
----
INSERT INTO revenue_append
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
GROUP BY window_start, window_end
----
INSERT INTO revenue_append
SELECT TUMBLE_START(ts, INTERVAL '3' SECOND), TUMBLE_END(ts, INTERVAL '3' SECOND), SUM(amount), COUNT(*), AVG(amount)
FROM transactions_f
GROUP BY TUMBLE(ts, INTERVAL '3' SECOND)
----
INSERT INTO revenue
SELECT WINDOWSTART, WINDOWEND, SUM(amount), COUNT(*), AVG(amount)
FROM transactions
WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 2 SECONDS)
GROUP BY user_id
EMIT CHANGES
----
CREATE TABLE per_user WITH (kafka_topic='per-user', value_format='json') AS
SELECT user_id, WINDOWSTART AS window_start, COUNT(*) AS n, SUM(amount) AS total, COUNT(DISTINCT amount) AS amounts
FROM transactions
WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS)
GROUP BY user_id
----
CREATE TABLE sessions_f WITH (kafka_topic='sessions', value_format='json') AS
SELECT user_id, window_start, window_end, COUNT(*) AS n, LAST_VALUE(amount) AS last_amount
FROM TABLE(SESSION(TABLE transactions_f PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '5' MINUTES))
GROUP BY user_id, window_start, window_end
----
CREATE TABLE sessions_c WITH (kafka_topic='sessions-c', value_format='json') AS
SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n FROM transactions WINDOW SESSION (5 MINUTES) GROUP BY user_id EMIT CHANGES
----
CREATE TABLE totals WITH (kafka_topic='totals', value_format='json') AS
SELECT user_id, COUNT(*) AS n, LATEST_BY_OFFSET(amount) AS last_amount
FROM transactions
GROUP BY user_id
HAVING COUNT(*) > 1
----
INSERT INTO revenue
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE transactions_f, DESCRIPTOR(paid_at), INTERVAL '3' SECONDS))
GROUP BY window_start, window_end
----
INSERT INTO revenue_append
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(HOP(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '10' SECONDS))
GROUP BY window_start, window_end
----
INSERT INTO revenue_append
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
WHERE window_start > TIMESTAMP '2026-01-01 00:00:00'
GROUP BY window_start, window_end
----
INSERT INTO revenue_append
SELECT WINDOWSTART, WINDOWEND, SUM(amount), COUNT(*), AVG(amount)
FROM transactions
WINDOW TUMBLING (SIZE 3 SECONDS)
GROUP BY user_id
EMIT CHANGES
----
CREATE TABLE t2 WITH (kafka_topic='t2', value_format='json') AS
SELECT user_id, COUNT(*) AS n FROM transactions GROUP BY user_id EMIT FINAL
----
CREATE TABLE t3 WITH (kafka_topic='t3', value_format='json') AS
SELECT user_id, window_start, COUNT(*) AS n
FROM TABLE(TUMBLE(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
GROUP BY user_id
----
CREATE TABLE t4 WITH (kafka_topic='t4', value_format='json') AS
SELECT user_id, window_start, COUNT(*) AS n
FROM TABLE(CUMULATE(TABLE transactions_f, DESCRIPTOR(ts), INTERVAL '3' SECONDS, INTERVAL '1' MINUTE))
GROUP BY user_id, window_start, window_end
----
CREATE TABLE bad_wm (a BIGINT, WATERMARK FOR a AS a - INTERVAL '5' SECOND) WITH ('connector'='kafka', 'topic'='x', 'format'='json')
----
CREATE TABLE bad_wm2 (a TIMESTAMP(3), WATERMARK FOR a AS a - 5) WITH ('connector'='kafka', 'topic'='x', 'format'='json')
----
CREATE STREAM bad_ts (a VARCHAR) WITH (kafka_topic='x', value_format='json', timestamp='a', timestamp_format='yyyy-QQ')
----
CREATE STREAM bad_ts2 (a BIGINT) WITH (kafka_topic='x', value_format='json', timestamp='b')
----
CREATE TABLE too_many WITH (kafka_topic='t5', value_format='json') AS
SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n FROM transactions WINDOW HOPPING (SIZE 1 DAY, ADVANCE BY 1 SECOND) GROUP BY user_id
