-- Math with Java's semantics, as ksqlDB and Flink compute it, and JSON as Jackson writes
-- it for them: NaN and the infinities are the strings "NaN", "Infinity" and "-Infinity"
-- (JSON has no such numbers; arrow-json would write null). The sink sets Flink's
-- 'json.encode.ignore-null-fields': its NULL fields are left out (by default they are null).
--   4:    SQRT 2.0,   LN 1.3862943611198906, 1/d 0.25
--   -1:   SQRT "NaN", LN "NaN",               1/d -1.0
--   0:    SQRT 0.0,   LN "-Infinity",         1/d "Infinity"
--   NULL: NULL everywhere, so the row is {}.
CREATE STREAM numbers (d DOUBLE)
WITH (connector='filesystem', path='${CASES}/numbers.json', format='json');
CREATE STREAM out WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='json', 'json.encode.ignore-null-fields'='true') AS
SELECT SQRT(d) AS root, LN(d) AS log, 1 / d AS inverse FROM numbers;
