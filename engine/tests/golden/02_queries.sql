CREATE STREAM server_logs (event_id VARCHAR KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)
WITH (kafka_topic='server-logs', value_format='delimited', partitions=4);
CREATE TABLE server_log (event_id VARCHAR PRIMARY KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_time TIMESTAMP(3))
WITH ('connector'='postgres', 'table-name'='server_log');
CREATE TABLE audit (id VARCHAR, what VARCHAR, n BIGINT, score DOUBLE, at TIMESTAMP(3)) WITH ('connector'='postgres')
----
INSERT INTO server_log
SELECT event_id, account_id, event_type,
       CASE location_country WHEN 'USA' THEN 'United States of America' WHEN 'O' THEN 'Other' ELSE location_country END,
       TO_TIMESTAMP_SECONDS(event_ts)
FROM server_logs
----
INSERT INTO audit
SELECT UPPER(s.event_id), CONCAT(s.event_type, '@', LOWER(s.location_country)), s.account_id * 2 + 1, CAST(s.account_id AS DOUBLE) / 3, TO_TIMESTAMP(s.event_ts * 1000 / 1000)
FROM server_logs AS s
WHERE s.event_type IN ('login', 'log-out') AND s.account_id BETWEEN 10 AND 9000 AND LENGTH(s.event_id) = 36
----
CREATE STREAM logins WITH (kafka_topic='logins', partitions=1) AS
SELECT event_id, account_id, location_country, event_ts FROM server_logs WHERE event_type = 'login'
----
CREATE STREAM logins_json WITH (kafka_topic='logins-json', value_format='json') AS
SELECT event_id AS id, SUBSTR(location_country, 1, 1) AS initial, event_ts * 1000 AS ts_ms, event_ts > 1600000000 AS recent FROM server_logs
----
INSERT INTO server_log SELECT * FROM server_logs
----
INSERT INTO server_log SELECT event_id, account_id, event_type, location_country, TO_TIMESTAMP_SECONDS(event_ts) FROM server_logs
----
CREATE TABLE alerts_by_account WITH ('connector'='kafka', 'topic'='by-account', 'format'='json', 'key.fields'='account_id') AS
SELECT event_id, account_id FROM server_logs
