-- Flink's flat types through the csv format, in and out: DECIMAL, DATE, TIME(3),
-- TIMESTAMP_LTZ(3) (an ISO-8601 offset is converted to UTC), SMALLINT, TINYINT, FLOAT and
-- BYTES (base64). Row 3's date does not exist and row 4's decimal has a thousands
-- separator: malformed, skipped and counted.
CREATE STREAM s (id INT, price DECIMAL(10, 2), day DATE, at TIME(3), ltz TIMESTAMP_LTZ(3), small SMALLINT, tiny TINYINT, f FLOAT, raw BYTES)
WITH ('connector'='filesystem', 'path'='file://${CASES}/typed.csv', 'format'='csv', 'csv.ignore-parse-errors'='true');
CREATE TABLE out (id INT, price DECIMAL(10, 2), cents BIGINT, day DATE, at TIME(3), ltz TIMESTAMP_LTZ(3), small SMALLINT, tiny TINYINT, f FLOAT, raw BYTES)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO out SELECT id, price, CAST(price * 100 AS BIGINT), day, at, ltz, small, tiny, f, raw FROM s;
