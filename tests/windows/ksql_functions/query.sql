-- ksqlDB's aggregate functions, with ksqlDB's meaning:
--   LATEST_BY_OFFSET(v) ignores nulls by default (a's is 7, not the last row's null);
--   LATEST_BY_OFFSET(v, false) keeps them (null); EARLIEST_BY_OFFSET(s) is a's first s;
--   COLLECT_LIST keeps every value in arrival order; TOPK(v, 2) the two largest, largest
--   first, nulls left out; TOPKDISTINCT(s, 2) the two largest distinct values;
--   LATEST_BY_OFFSET(v, 2) a's last two non-null values [9, 7]; EARLIEST_BY_OFFSET(v, 2, false)
--   a's first two values, nulls kept: [5, null] (both earliest to latest, as ksqlDB orders them).
CREATE STREAM ev (k VARCHAR, v INT, s VARCHAR, ts VARCHAR)
WITH (connector='filesystem', path='${CASES}/ksql_functions/events.json', format='json', timestamp='ts');
CREATE TABLE out WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='json') AS
SELECT k, LATEST_BY_OFFSET(v) AS latest, LATEST_BY_OFFSET(v, false) AS latest_nulls, EARLIEST_BY_OFFSET(s) AS first_s,
       COLLECT_LIST(v) AS all_v, TOPK(v, 2) AS top2, TOPKDISTINCT(s, 2) AS top_s,
       LATEST_BY_OFFSET(v, 2) AS last2, EARLIEST_BY_OFFSET(v, 2, false) AS first2
FROM ev WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY k EMIT FINAL;
