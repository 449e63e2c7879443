CREATE STREAM server_logs (event_id VARCHAR KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)
WITH (kafka_topic='server-logs', value_format='delimited');
CREATE TABLE server_log (event_id VARCHAR PRIMARY KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_time TIMESTAMP(3))
WITH ('connector'='postgres')
----
INSERT INTO server_log
SELECT event_id,
       acount_id, event_type, location_country, TO_TIMESTAMP_SECONDS(event_ts)
FROM server_logs
----
INSERT INTO server_log SELECT * FROM servr_logs
----
INSERT INTO server_lg SELECT * FROM server_logs
----
CREATE STREAM s2 (a INT) WITH (kafka_topik='x', value_format='json')
----
CREATE STREAM s3 (a INT) WITH (kafka_topic='x', value_format='avro')
----
CREATE STREAM s4 (event_id KEY, a INT) WITH (kafka_topic='x', value_format='json')
----
CREATE STREAM s5 (a INT) WITH (kafka_topic='x, value_format='json')
----
CREATE TABLE s6 (a INT) WITH ('connector'='kafak', 'topic'='x', 'format'='json')
----
CREATE STREAM s7 (a BLOB) WITH (kafka_topic='x', value_format='json')
----
CREATE STREAM s8 (a INT, b INT)
----
CREATE STREAM s9 (a INT) WITH (value_format='json')
----
CREATE STREAM server_logs (a INT) WITH (kafka_topic='x', value_format='json')
----
INSERT INTO server_log SELECT event_id, account_id FROM server_logs
----
INSERT INTO server_log SELECT event_id, event_type AS n, event_type, location_country, TO_TIMESTAMP_SECONDS(event_ts) FROM server_logs
----
INSERT INTO server_log SELECT * FROM server_log
----
INSERT INTO server_log SELECT event_type, COUNT(*) FROM server_logs GROUP BY event_type
----
SELEC * FROM server_logs
----
SELECT * FROM server_logs
----
INSERT INTO server_log SELECT event_id, account_id, event_type, location_country, NO_SUCH_FN(event_ts) FROM server_logs
----
INSERT INTO server_log SELECT x.event_id, account_id, event_type, location_country, TO_TIMESTAMP_SECONDS(event_ts) FROM server_logs
----
CREATE STREAM s10 (a INT KEY, b INT KEY) WITH (kafka_topic='x', value_format='json')
----
CREATE STREAM s11 (a INT) WITH (kafka_topic='x', value_format='json', partitions=0)
----
CREATE STREAM s12 (a INT) WITH (kafka_topic='x', value_format='json', partitions=four)
----
CREATE TABLE s13 (a INT) WITH ('connector'='postgres', 'url'='mysql://db/x')
----
CREATE TABLE s14 (a INT) WITH ('connector'='postgres', 'topic'='x')
----
INSERT INTO server_log SELECT event_id, account_id, event_type, location_country, TO_TIMESTAMP_SECONDS(event_ts) FROM server_logs JOIN server_logs b ON true
----
CREATE TABLE s15 (a INT, b INT) WITH ('connector'='kafka', 'topic'='x', 'format'='json', 'key.fields'='c')
----
CREATE STREAM s16 (a INT) WITH (kafka_topic='x', value_format='json', 'value.error.policy'='dead_letter')
----
CREATE STREAM s16b (a INT) WITH (kafka_topic='x', value_format='json', 'value.error.policy'='dead_letter', 'dead-letter.topic'='dlq', 'dead-letter.table'='dlq')
----
CREATE STREAM s16c (a INT) WITH (kafka_topic='x', value_format='json', 'dead-letter.topic'='dlq')
----
CREATE STREAM s16d (a INT) WITH (kafka_topic='x', value_format='json', 'value.error.policy'='dead_letter', 'dead-letter.topic'='dlq', 'dead-letter.url'='postgres://h/db')
----
CREATE STREAM s17 (a INT) WITH (kafka_topic='x', value_format='json', 'value.error.policy'='ignore')
----
CREATE STREAM s18 (a INT) WITH (kafka_topic='x', value_format='json', 'sink.delivery-guarantee'='exactly_twice')
----
INSERT INTO server_log
SELECT * FROM server_logs MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY event_ts MEASURES A.event_id AS e PATTERN (A B) WITHIN INTERVAL '5' MINUTE DEFINE A AS A.event_type = 'login')
----
INSERT INTO server_log SELECT event_id, account_id, event_type, location_country, TO_TIMESTAMP(event_id, 'yyyy-QQ') FROM server_logs
----
INSERT INTO server_log SELECT event_id, account_id, event_type, location_country, TO_TIMESTAMP(account_id > 3) FROM server_logs
