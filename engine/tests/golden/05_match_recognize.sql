CREATE STREAM server_logs (event_id VARCHAR KEY, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT,
    ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH (kafka_topic='server-logs', value_format='delimited');
CREATE STREAM alerts (account_id INT KEY, event_id VARCHAR, prev_country VARCHAR, current_country VARCHAR, alert_time TIMESTAMP(3))
WITH (kafka_topic='alerts', value_format='json');
CREATE STREAM ticks (symbol VARCHAR, price DOUBLE, at BIGINT) WITH (kafka_topic='ticks', value_format='json', timestamp='at');
CREATE TABLE matches (symbol VARCHAR, n BIGINT, info VARCHAR) WITH ('connector'='blackhole')
----
INSERT INTO alerts
SELECT account_id, event_id, prev_country, current_country, alert_time
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
INSERT INTO matches
SELECT symbol, n, CAST(first_price AS VARCHAR) || '/' || cls
FROM ticks
MATCH_RECOGNIZE (
    PARTITION BY symbol
    ORDER BY at
    MEASURES MATCH_NUMBER() AS n, FIRST(A.price) AS first_price, CLASSIFIER() AS cls, AVG(B.price) AS avg_b, PREV(A.price, 2) AS p2, LAST(price, 1) AS before_last
    ALL ROWS PER MATCH
    AFTER MATCH SKIP TO LAST B
    PATTERN ((A | B){2,3}? C?? (D E)+ F{2}) WITHIN INTERVAL '1' HOUR
    DEFINE A AS price > PREV(price), B AS price < FIRST(A.price) AND price > 0, D AS LAST(D.price, 1) IS NULL
)
----
INSERT INTO matches
SELECT symbol, n, cls
FROM ticks
MATCH_RECOGNIZE (
    PARTITION BY symbol ORDER BY at
    MEASURES MATCH_NUMBER() AS n, CLASSIFIER() AS cls
    AFTER MATCH SKIP TO FIRST B
    PATTERN (A B+ C)
    DEFINE B AS price < PREV(price)
)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY price MEASURES A.price AS p PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol MEASURES A.price AS p PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at DESC MEASURES A.price AS p PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (PERMUTE(A, B)) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (^ A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B $) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A {- B -} C) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p SUBSET AB = (A, B) PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B) DEFINE A AS price > NEXT(price))
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B) DEFINE A AS SUM(A.price) > 10)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B) DEFINE A AS price + 1)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES X.price AS p PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.prize AS p PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B) DEFINE C AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A* B?) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p ALL ROWS PER MATCH WITH UNMATCHED ROWS PATTERN (A B) DEFINE A AS price > 0)
----
INSERT INTO matches
SELECT symbol, COUNT(*), 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES A.price AS p PATTERN (A B) DEFINE A AS price > 0) GROUP BY symbol
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks MATCH_RECOGNIZE (PARTITION BY symbol ORDER BY at MEASURES MATCH_NUMBER() AS n PATTERN (A B) DEFINE A AS CLASSIFIER() = 'A')
----
INSERT INTO matches
SELECT symbol, 1, 'x' FROM ticks WHERE price > 0 WITHIN INTERVAL '5' MINUTE
----
CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', value_format='json');
CREATE STREAM funnels (user_id VARCHAR, pages BIGINT) WITH (kafka_topic='funnels', value_format='json');
INSERT INTO funnels
SELECT user_id, pages FROM clicks
MATCH_RECOGNIZE (PARTITION BY user_id ORDER BY ROWTIME MEASURES COUNT(*) AS pages
    PATTERN (H P+? C) WITHIN INTERVAL '30' MINUTE
    DEFINE H AS page = 'home', C AS page = 'checkout')
