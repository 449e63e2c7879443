-- Flink's filesystem source as Flink users write it: a file:// URI naming a directory
-- (every file in it, by name; hidden files, '.' or '_' first, are skipped), a
-- TIMESTAMP(3) column in JSON's SQL timestamp format, and Flink's json format options.
-- part-0.json ends with a malformed line (skipped and counted: json.ignore-parse-errors);
-- .hidden.json and _SUCCESS would add 1000 to the first window if they were read.
CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector'='filesystem', 'path'='file://${CASES}/flink_directory/input/', 'format'='json',
      'json.timestamp-format.standard'='SQL', 'json.ignore-parse-errors'='true',
      'scan.batch.max-rows'='2', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE out (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total DOUBLE, n BIGINT, avg_amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;
