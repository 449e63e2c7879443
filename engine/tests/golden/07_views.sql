CREATE TABLE payments (
  account_id VARCHAR, amount DOUBLE, country VARCHAR, paid_at TIMESTAMP(3),
  WATERMARK FOR paid_at AS paid_at - INTERVAL '5' SECOND
) WITH ('connector'='kafka', 'topic'='payments', 'format'='json');
CREATE TABLE big_payments (account_id VARCHAR, cents DOUBLE) WITH ('connector'='postgres');
CREATE TABLE per_account (account_id VARCHAR, window_start TIMESTAMP(3), n BIGINT, total DOUBLE, PRIMARY KEY (account_id, window_start) NOT ENFORCED)
WITH ('connector'='postgres');
CREATE VIEW big AS SELECT account_id, amount * 100 AS cents, paid_at FROM payments WHERE amount > 10
----
INSERT INTO big_payments SELECT account_id, cents FROM big WHERE cents > 5000
----
INSERT INTO big_payments SELECT * FROM (SELECT account_id, cents FROM big) AS b WHERE b.cents < 100000
----
INSERT INTO big_payments
WITH eu AS (SELECT account_id AS id, amount FROM payments WHERE country IN ('DE', 'FR')),
     eu_big AS (SELECT id, amount * 2 AS doubled FROM eu WHERE amount > 1)
SELECT id, doubled FROM eu_big
----
INSERT INTO big_payments SELECT p.account_id, p.amount FROM (SELECT * FROM payments WHERE country = 'DE') p
----
CREATE VIEW renamed (who, how_much) AS SELECT account_id, cents FROM big
----
INSERT INTO big_payments SELECT who, how_much FROM renamed WHERE how_much > 1
----
INSERT INTO per_account
SELECT account_id, window_start, COUNT(*), SUM(cents)
FROM TABLE(TUMBLE(TABLE big, DESCRIPTOR(paid_at), INTERVAL '1' MINUTE))
GROUP BY account_id, window_start, window_end
----
CREATE VIEW late_view AS SELECT account_id, paid_at + INTERVAL '1' HOUR AS later FROM payments
----
INSERT INTO big_payments SELECT account_id, CAST(COUNT(*) AS DOUBLE) FROM TABLE(TUMBLE(TABLE late_view, DESCRIPTOR(later), INTERVAL '1' MINUTE)) GROUP BY account_id, window_start, window_end
----
CREATE VIEW per_country AS SELECT country, COUNT(*) AS n FROM payments GROUP BY country
----
INSERT INTO big_payments SELECT account_id, cents FROM big JOIN payments ON big.account_id = payments.account_id
----
INSERT INTO big_payments SELECT b.account_id, b.nope FROM big AS b
----
CREATE VIEW unnamed AS SELECT account_id, amount * 2 FROM payments
----
CREATE VIEW payments AS SELECT * FROM payments
----
CREATE TABLE big (x INT) WITH ('connector'='postgres')
----
CREATE VIEW IF NOT EXISTS big AS SELECT account_id FROM payments
----
INSERT INTO big_payments SELECT account_id, amount FROM payments EXCEPT SELECT account_id, amount FROM payments
----
DROP VIEW renamed
----
DROP VIEW renamed
----
DROP VIEW IF EXISTS renamed
----
CREATE TABLE refunds (account_id VARCHAR, amount DOUBLE, refunded_at TIMESTAMP(3)) WITH ('connector'='kafka', 'topic'='refunds', 'format'='json');
CREATE TABLE movements (account_id VARCHAR, cents DOUBLE) WITH ('connector'='kafka', 'topic'='movements', 'format'='json')
----
INSERT INTO movements
SELECT account_id, amount * 100 FROM payments WHERE amount > 0
UNION ALL
SELECT account_id, -amount * 100 FROM refunds
----
INSERT INTO movements SELECT account_id, amount FROM payments UNION SELECT account_id, amount FROM refunds
----
INSERT INTO movements SELECT account_id, amount FROM payments UNION ALL SELECT account_id, refunded_at FROM refunds
----
INSERT INTO movements SELECT account_id, amount FROM payments UNION ALL SELECT account_id, amount * 2 FROM payments
----
INSERT INTO movements SELECT account_id, COUNT(*) FROM payments GROUP BY account_id UNION ALL SELECT account_id, amount FROM refunds
