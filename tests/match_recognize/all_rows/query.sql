-- ALL ROWS PER MATCH: one row per row of each match, the measures RUNNING (over the match up
-- to that row), then the source's other columns; the outer WHERE drops the A rows.
-- The matches are those of measures/. Running MIN(price): X#1 12 -> 11 -> 9 -> 9; Y#1 5 -> 4 -> 4;
-- X#2 12 -> 11 -> 11.
CREATE TABLE ticks (symbol VARCHAR, price INT, at VARCHAR, ts AS TO_TIMESTAMP_LTZ(at), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/ticks.csv', 'format'='csv', 'scan.batch.max-rows'='3', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (symbol VARCHAR, n BIGINT, cls VARCHAR, running_count BIGINT, lowest INT, price INT, at VARCHAR)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT m.symbol, n, cls, running_count, lowest, price, at
FROM ticks
MATCH_RECOGNIZE (
    PARTITION BY symbol
    ORDER BY ts
    MEASURES MATCH_NUMBER() AS n, CLASSIFIER() AS cls, COUNT(*) AS running_count, MIN(price) AS lowest
    ALL ROWS PER MATCH
    PATTERN (A B+ C) WITHIN INTERVAL '1' MINUTE
    DEFINE B AS B.price < PREV(B.price), C AS C.price > PREV(C.price)
) AS m
WHERE cls <> 'A';
