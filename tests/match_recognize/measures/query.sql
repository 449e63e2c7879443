-- ONE ROW PER MATCH with every kind of measure, over two symbols' prices (ticks.csv):
-- a price, falling one or more times (B+, greedy), then rising (C). Hand-checked:
--   X 10 12 11 9 13 12 11 14 15: from 10 no fall; 12 11 9 13 (match 1); 12 11 14 (match 2); 15 alone.
--   Y 5 4 6: match 1 of Y; PREV(A.price) is NULL (no earlier Y row), FIRST(B.price, 1) too.
-- Rows come out ordered by the match's last row: X#1 (10:00:04), Y#1 (10:00:05), X#2 (10:00:07).
CREATE TABLE ticks (symbol VARCHAR, price INT, at VARCHAR, ts AS TO_TIMESTAMP_LTZ(at), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/ticks.csv', 'format'='csv', 'scan.batch.max-rows'='3', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (symbol VARCHAR, n BIGINT, start_price INT, before_price INT, bottom_price INT, end_price INT,
    drops BIGINT, drop_sum BIGINT, drop_avg DOUBLE, drop_min INT, drop_max INT, last_class VARCHAR,
    start_ts TIMESTAMP(3), end_ts TIMESTAMP(3), match_time TIMESTAMP(3), second_drop INT)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT * FROM ticks
MATCH_RECOGNIZE (
    PARTITION BY symbol
    ORDER BY ts
    MEASURES
        MATCH_NUMBER() AS n,
        A.price AS start_price,
        PREV(A.price) AS before_price,
        LAST(B.price) AS bottom_price,
        C.price AS end_price,
        COUNT(B.*) AS drops,
        SUM(B.price) AS drop_sum,
        AVG(B.price) AS drop_avg,
        MIN(B.price) AS drop_min,
        MAX(B.price) AS drop_max,
        CLASSIFIER() AS last_class,
        FIRST(ts) AS start_ts,
        LAST(ts) AS end_ts,
        MATCH_ROWTIME() AS match_time,
        FIRST(B.price, 1) AS second_drop
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A B+ C) WITHIN INTERVAL '1' MINUTE
    DEFINE
        B AS B.price < PREV(B.price),
        C AS C.price > PREV(C.price)
);
