CREATE TABLE orders (
  order_id VARCHAR, customer_id VARCHAR, amount DOUBLE, order_time TIMESTAMP(3),
  proc_time AS PROCTIME(),
  WATERMARK FOR order_time AS order_time - INTERVAL '5' SECOND
) WITH ('connector'='kafka', 'topic'='orders', 'format'='json');
CREATE TABLE customers (id VARCHAR, name VARCHAR, tier INT, PRIMARY KEY (id) NOT ENFORCED)
WITH ('connector'='jdbc', 'url'='jdbc:postgresql://127.0.0.1:5432/shop', 'table-name'='customers', 'username'='postgres',
      'lookup.cache'='PARTIAL', 'lookup.partial-cache.max-rows'='10000', 'lookup.partial-cache.expire-after-write'='10 min');
CREATE TABLE enriched (order_id VARCHAR, amount DOUBLE, name VARCHAR, tier INT) WITH ('connector'='postgres');
CREATE TABLE tiers (tier INT, label VARCHAR) WITH ('connector'='postgres')
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier
FROM orders AS o
LEFT JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id
----
INSERT INTO enriched
SELECT o.order_id, o.amount * 2, UPPER(c.name), c.tier
FROM orders o JOIN customers c ON c.id = LOWER(o.customer_id) AND c.tier > 1
WHERE o.amount > 10
----
CREATE STREAM big_orders WITH (kafka_topic='big-orders', value_format='json') AS
SELECT o.order_id, c.name AS customer, o.amount FROM orders o JOIN customers FOR SYSTEM_TIME AS OF o.proc_time c ON o.customer_id = c.id
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier FROM orders o JOIN customers c ON o.amount > c.tier
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier FROM orders o JOIN customers FOR SYSTEM_TIME AS OF o.order_time AS c ON o.customer_id = c.id
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier FROM orders o JOIN customers FOR SYSTEM_TIME AS OF c.proc_time AS c ON o.customer_id = c.id
----
INSERT INTO enriched SELECT order_id, amount, customer_id, 1 FROM orders FOR SYSTEM_TIME AS OF proc_time
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id
----
INSERT INTO enriched
SELECT o.order_id, o.amount, c.name, c.tier FROM orders o JOIN customers c ON o.customer_id = c.id JOIN tiers t ON t.tier = c.tier
----
INSERT INTO enriched
SELECT o.order_id, o.amount, o.customer_id, 1 FROM orders o JOIN orders p ON o.order_id = p.order_id
----
CREATE TABLE spend WITH ('connector'='kafka', 'topic'='spend', 'format'='json') AS
SELECT c.name, SUM(o.amount) AS total FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY c.name
----
CREATE STREAM everything WITH (kafka_topic='everything', value_format='json') AS
SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id
----
CREATE STREAM twice WITH (kafka_topic='twice', value_format='json') AS
SELECT o.order_id, c.name AS order_id FROM orders o JOIN customers c ON o.customer_id = c.id
----
CREATE TABLE order_copies (order_id VARCHAR, amount DOUBLE, seen_at AS PROCTIME())
WITH ('connector'='kafka', 'topic'='order-copies', 'format'='json');
INSERT INTO order_copies SELECT order_id, amount FROM orders
----
CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR, region VARCHAR) WITH (kafka_topic='users', value_format='json', partitions=1);
CREATE STREAM clicks (user_id VARCHAR, page VARCHAR) WITH (kafka_topic='clicks', value_format='json', partitions=1)
----
CREATE STREAM enriched_clicks AS
SELECT c.user_id, c.page, u.name, u.region FROM clicks c LEFT JOIN users u ON c.user_id = u.id EMIT CHANGES
----
CREATE STREAM by_region AS
SELECT c.user_id, u.name FROM clicks c JOIN users u ON c.page = u.region
----
CREATE STREAM click_events (user_id VARCHAR, page VARCHAR) WITH (kafka_topic='click-events', value_format='json', partitions=1);
CREATE STREAM page_views (user_id VARCHAR, ms BIGINT) WITH (kafka_topic='views', value_format='json', partitions=1)
----
CREATE STREAM j AS SELECT c.user_id, v.ms FROM click_events c JOIN page_views v WITHIN 1 HOUR ON c.user_id = v.user_id
----
CREATE STREAM j2 AS SELECT c.user_id, v.ms FROM click_events c JOIN page_views v WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 10 MINUTES ON c.user_id = v.user_id
----
CREATE STREAM j3 AS SELECT c.user_id, v.ms FROM click_events c JOIN page_views v ON c.user_id = v.user_id
----
CREATE STREAM j4 AS SELECT o.order_id, c.name FROM orders o JOIN customers c WITHIN 1 HOUR ON o.customer_id = c.id
----
CREATE STREAM j5 AS SELECT user_id FROM click_events WITHIN 1 HOUR
----
CREATE TABLE impressions (ad_id VARCHAR, shown_at TIMESTAMP(3), WATERMARK FOR shown_at AS shown_at - INTERVAL '5' SECOND)
WITH ('connector'='kafka', 'topic'='impressions', 'format'='json');
CREATE TABLE ad_clicks (ad_id VARCHAR, clicked_at TIMESTAMP(3), WATERMARK FOR clicked_at AS clicked_at - INTERVAL '5' SECOND)
WITH ('connector'='kafka', 'topic'='ad-clicks', 'format'='json');
CREATE TABLE clicked (ad_id VARCHAR, shown_at TIMESTAMP(3), clicked_at TIMESTAMP(3)) WITH ('connector'='postgres')
----
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i JOIN ad_clicks c
ON i.ad_id = c.ad_id AND c.clicked_at BETWEEN i.shown_at AND i.shown_at + INTERVAL '10' MINUTE
----
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i LEFT JOIN ad_clicks c
ON i.ad_id = c.ad_id AND i.shown_at >= c.clicked_at - INTERVAL '1' HOUR AND i.shown_at <= c.clicked_at
----
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i, ad_clicks c
WHERE i.ad_id = c.ad_id AND c.clicked_at BETWEEN i.shown_at AND i.shown_at + INTERVAL '10' MINUTE
----
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i FULL JOIN ad_clicks c ON i.ad_id = c.ad_id
----
CREATE TABLE fx (currency VARCHAR PRIMARY KEY, rate DOUBLE, ts BIGINT) WITH (kafka_topic='fx', value_format='json', partitions=1, timestamp='ts');
CREATE STREAM purchases (id VARCHAR, currency VARCHAR, amount DOUBLE, ts BIGINT) WITH (kafka_topic='purchases', value_format='json', partitions=1, timestamp='ts')
----
CREATE STREAM priced AS SELECT p.id, p.amount * f.rate AS eur FROM purchases p JOIN fx FOR SYSTEM_TIME AS OF p.ts AS f ON p.currency = f.currency WHERE p.amount > 1
----
SET 'table.exec.state.ttl' = '1 h';
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i JOIN ad_clicks c ON i.ad_id = c.ad_id
----
INSERT INTO clicked
SELECT i.ad_id, i.shown_at, c.clicked_at FROM impressions i LEFT JOIN ad_clicks c ON i.ad_id = c.ad_id
