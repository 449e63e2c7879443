-- Flink's TO_TIMESTAMP(string [, pattern]): a Java DateTimeFormatter pattern (quotes
-- around literal text, '' for a quote), TIMESTAMP(3) without time zone. A value the
-- pattern does not read is tried as Java's Timestamp.valueOf / Date.valueOf would read
-- it (yyyy-[M]M-[d]d[ HH:mm:ss[.f]]), and is NULL when that fails too, as in Flink: one
-- bad row does not fail the query. The default pattern is 'yyyy-MM-dd HH:mm:ss'.
--   row 1: iso 00:00:01.5 (the pattern); plain 10:20:30
--   row 2: iso 00:00:02 (the pattern fails, Timestamp.valueOf reads it); plain 2026-01-02 00:00 (a date alone)
--   row 3: iso NULL ('yesterday'); plain 03:04:05.25 (fractions allowed)
--   row 4: iso NULL (NULL in); plain NULL ('10:20' is no date)
CREATE STREAM stamps (s VARCHAR, d VARCHAR)
WITH (connector='filesystem', path='${CASES}/timestamps.json', format='json');
CREATE STREAM out WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='json') AS
SELECT TO_TIMESTAMP(s, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''') AS iso, TO_TIMESTAMP(d) AS plain FROM stamps;
