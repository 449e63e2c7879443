-- AFTER MATCH SKIP TO NEXT ROW: matches may overlap. Letters a b b c a b c c a b (one per
-- second from 10:00:00); X is any row (no DEFINE), Y a 'b': (0,1) ab, then from row 1: (1,2) bb,
-- (4,5) ab, (8,9) ab. SKIP PAST LAST ROW would not find (1,2).
CREATE TABLE letters (k VARCHAR, letter VARCHAR, at VARCHAR, ts AS TO_TIMESTAMP_LTZ(at), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector'='filesystem', 'path'='${CASES}/letters.csv', 'format'='csv', 'scan.batch.max-rows'='4', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (first_at VARCHAR, last_at VARCHAR, pair VARCHAR, rows_in_match BIGINT)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out
SELECT first_at, last_at, pair, rows_in_match
FROM letters
MATCH_RECOGNIZE (
    PARTITION BY k
    ORDER BY ts
    MEASURES FIRST(at) AS first_at, LAST(at) AS last_at, X.letter || Y.letter AS pair, COUNT(*) AS rows_in_match
    AFTER MATCH SKIP TO NEXT ROW
    PATTERN (X Y)
    DEFINE Y AS Y.letter = 'b'
);
