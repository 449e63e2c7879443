-- Alternation and a group under a greedy quantifier: PATTERN (A (B | C)+ C) over the letters
-- a b b c a b c c a b: the greedy (B | C)+ takes as many rows as still let C end the match: a b b c, then a b c c.
-- The last a b cannot end with C.
CREATE TABLE letters (k VARCHAR, letter VARCHAR, at VARCHAR, ts AS TO_TIMESTAMP_LTZ(at), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/letters.csv', 'format'='csv', 'scan.batch.max-rows'='4', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (first_at VARCHAR, last_at VARCHAR, rows_in_match BIGINT, cs BIGINT, last_class VARCHAR)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT first_at, last_at, rows_in_match, cs, last_class
FROM letters
MATCH_RECOGNIZE (
    PARTITION BY k
    ORDER BY ts
    MEASURES FIRST(at) AS first_at, LAST(at) AS last_at, COUNT(*) AS rows_in_match, COUNT(C.*) AS cs, CLASSIFIER() AS last_class
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (A (B | C)+ C)
    DEFINE A AS letter = 'a', B AS letter = 'b', C AS letter = 'c'
);
