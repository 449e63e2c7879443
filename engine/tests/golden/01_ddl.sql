CREATE STREAM server_logs (
    event_id VARCHAR KEY,
    account_id INT,
    event_type VARCHAR,
    location_country VARCHAR,
    event_ts BIGINT
) WITH (KAFKA_TOPIC='server-logs', VALUE_FORMAT='DELIMITED', PARTITIONS=4)
----
CREATE TABLE clicks (
    user_id STRING,
    url VARCHAR(200),
    amount DOUBLE,
    ok BOOLEAN,
    ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = 'clicks',
    'format' = 'csv',
    'csv.field-delimiter' = '|',
    'properties.bootstrap.servers' = 'broker:9092',
    'properties.security.protocol' = 'PLAINTEXT',
    'scan.startup.mode' = 'latest-offset'
)
----
CREATE TABLE transactions (user_id VARCHAR, amount BIGINT, paid_at TIMESTAMP(3))
WITH ('connector'='kafka', 'topic'='transactions', 'format'='json')
----
CREATE TABLE server_log (
    event_id VARCHAR PRIMARY KEY,
    account_id INT,
    event_type VARCHAR,
    location_country VARCHAR,
    event_time TIMESTAMP(3)
) WITH ('connector'='postgres', 'url'='postgres://postgres@127.0.0.1:5432/eddy', 'table-name'='server_log')
----
CREATE TABLE jdbc_sink (
    id BIGINT,
    name VARCHAR,
    PRIMARY KEY (id) NOT ENFORCED
) WITH ('connector'='jdbc', 'url'='jdbc:postgresql://db:5432/bank', 'table-name'='customers', 'username'='eddy', 'password'='secret')
----
CREATE TABLE log_copy (event_id VARCHAR, n INTEGER) WITH ('connector'='postgres')
----
CREATE TABLE console (event_id VARCHAR, n INT) WITH ('connector'='print')
----
CREATE OR REPLACE TABLE nothing (x INT NOT NULL) WITH ('connector'='blackhole')
----
CREATE STREAM IF NOT EXISTS server_logs (a INT) WITH (kafka_topic='other', value_format='json')
----
CREATE STREAM strict_logs (a INT) WITH (kafka_topic='strict', value_format='json', 'value.error.policy'='fail')
