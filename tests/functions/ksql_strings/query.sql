-- ksqlDB's string functions with ksqlDB's indexing (its substring.json and instr.json
-- cases, and its INITCAP), where DataFusion's PostgreSQL rules differ:
--   SUBSTRING(s, 6): from the 6th character; past the end gives '' ('short').
--   SUBSTRING(s, 0, 2): position 0 is the start, so the first two characters (PostgreSQL: one).
--   SUBSTR(s, -5): the last five characters. SUBSTRING(s FROM 2 FOR 3): the same rules.
--   INSTR(s, 'or'), (s, 'or', 4), (s, 'or', -4, 2): 1-based, 0 when not found or s is NULL.
--   INITCAP: words split on whitespace only ('Hello-world'), leading whitespace dropped.
-- Worked out by hand from ksqlDB's Substring, Instr and InitCap UDFs:
--   "corporate floor": 'rate floor', 'co', 'floor', 'orp'; 'or' at 2, from 4 at 5, the
--      second backwards from the 12th character at 2; 'Corporate Floor'.
--   "should I stay or should I go" (28 characters): 'or' at 15 only, so from the 25th
--      backwards there is no second one: 0.
--   "short": '' (past the end), 'sh', 'short', 'hor'; 3, 0, 0.
--   NULL: NULL strings (written as null, as ksqlDB and Flink write them) and INSTR 0, as in ksqlDB.
--   "  hello-world  AGAIN": INITCAP drops the leading spaces: 'Hello-world  Again'.
CREATE STREAM words (source VARCHAR)
WITH (connector='filesystem', path='${CASES}/strings.json', format='json');
CREATE STREAM out WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='json') AS
SELECT SUBSTRING(source, 6) AS from6, SUBSTRING(source, 0, 2) AS first2, SUBSTR(source, -5) AS last5,
       SUBSTRING(source FROM 2 FOR 3) AS mid, INSTR(source, 'or') AS at1, INSTR(source, 'or', 4) AS at4,
       INSTR(source, 'or', -4, 2) AS back2, INITCAP(source) AS cap
FROM words;
