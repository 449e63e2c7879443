CREATE STREAM server_logs (event_id VARCHAR KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT)
WITH (kafka_topic='server-logs', value_format='DELIMITED', partitions=4)
----
create or replace stream "MixedCase" (a integer, b string, c double, d boolean, e timestamp(3), f bigint not null)
with (KAFKA_TOPIC = 'x', VALUE_FORMAT = JSON, value_delimiter = '|')
----
CREATE TABLE IF NOT EXISTS t (
    user_id STRING,
    ts TIMESTAMP(3),
    PRIMARY KEY (user_id) NOT ENFORCED,
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'csv', 'properties.bootstrap.servers' = 'b:9092', 'scan.startup.mode' = 'earliest-offset')
----
CREATE TABLE server_log (event_id VARCHAR PRIMARY KEY NOT ENFORCED, event_time TIMESTAMP(3))
WITH ('connector'='jdbc', 'url'='jdbc:postgresql://db:5432/x', 'table-name'='server_log')
----
CREATE STREAM logins WITH (kafka_topic='logins') AS SELECT event_id FROM server_logs WHERE event_type = 'login'
----
INSERT INTO server_log SELECT event_id, TO_TIMESTAMP_SECONDS(event_ts) FROM server_logs;
INSERT INTO other SELECT * FROM server_logs
----
SELECT * FROM server_logs
----
CREATE STREAM s WITH (kafka_topic='x')
----
CREATE STREAM s (a INT) WITH (kafka_topic='x', kafka_topic='y')
----
CREATE STREAM s (a INT,) WITH (kafka_topic='x')
----
CREATE STREAM s (a INT) WITH (kafka_topic=)
----
CREATE STREAM s (a INT) WITH (kafka_topic='x') EMIT
----
CREATE STREAM s (a INT) (b INT)
----
CREATE STREAM s (a INT) WITH (kafka_topic='x') AS SELECT 1
----
INSERT INTO t (a, b) SELECT a, b FROM s
----
INSERT INTO db.t SELECT a FROM s
----
DELETE FROM t
----
CREATE STREAM s (a INT KEY PRIMARY) WITH (kafka_topic='x')
----
INSERT INTO alerts
SELECT event_id, account_id, prev_country, current_country, alert_time
FROM server_logs
MATCH_RECOGNIZE (
    PARTITION BY account_id
    ORDER BY ts
    MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country, B.ts AS alert_time
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE
    DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out',
           B AS B.event_type = 'login' AND B.location_country <> A.location_country
)
----
EXECUTE STATEMENT SET
BEGIN
  INSERT INTO a SELECT * FROM s;
  INSERT INTO b SELECT x FROM s WHERE x > 1;
END;
----
BEGIN STATEMENT SET; INSERT INTO a SELECT * FROM s; END;
----
EXECUTE INSERT INTO a SELECT * FROM s
----
EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT * FROM s; CREATE STREAM x (a INT) WITH (kafka_topic='x'); END;
----
EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT * FROM s;
