-- A running aggregate in DEFINE (SQL:2016, Flink): B rows join while the sum of the B
-- prices so far, the current row included, stays at most 20. A is a price of at least 12.
-- Over ticks.csv, hand-checked:
--   X 10 12 11 9 13 12 11 14 15: 10 is no A; A=12, B 11 (sum 11), 9 (20), 13 would make 33:
--     match 1 is 12 | 11 9. A=13, B 12 (12), 11 would make 23: match 2 is 13 | 12.
--     11 is no A; A=14, B 15 (15), then the input ends: match 3 is 14 | 15.
--   Y 5 4 6: no price of at least 12, no match.
CREATE TABLE ticks (symbol VARCHAR, price INT, at VARCHAR, ts AS TO_TIMESTAMP_LTZ(at), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/ticks.csv', 'format'='csv', 'scan.batch.max-rows'='3', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (symbol VARCHAR, a_price INT, bs BIGINT, b_total BIGINT, b_average DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT symbol, a_price, bs, b_total, b_average
FROM ticks
MATCH_RECOGNIZE (
    PARTITION BY symbol
    ORDER BY ts
    MEASURES A.price AS a_price, COUNT(B.*) AS bs, SUM(B.price) AS b_total, AVG(B.price) AS b_average
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A B+) WITHIN INTERVAL '1' MINUTE
    DEFINE A AS A.price >= 12, B AS SUM(B.price) <= 20
);
