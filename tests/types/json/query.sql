-- Flink's types through the JSON format, in and out: DECIMAL (a number or a string),
-- DATE, TIME(3), TIMESTAMP_LTZ(3), SMALLINT, TINYINT, FLOAT, ARRAY, MAP, ROW and BYTES
-- (base64, as Flink's json format writes it), with field names in any case, nested ones too (row 1).
-- Row 3's date and row 4's bytes do not parse: malformed, skipped and counted.
-- Row 4's price 0.005 would round; it is dropped with its row anyway.
CREATE STREAM s (id INT, price DECIMAL(10, 2), day DATE, at TIME(3), ltz TIMESTAMP_LTZ(3), small SMALLINT, tiny TINYINT,
                 f FLOAT, tags ARRAY<STRING>, attrs MAP<STRING, INT>, addr ROW<street STRING, zip INT>, raw BYTES)
WITH ('connector'='filesystem', 'path'='file://${CASES}/typed.json', 'format'='json', 'json.ignore-parse-errors'='true');
CREATE TABLE out (id INT, price DECIMAL(10, 2), doubled DECIMAL(12, 2), day DATE, next_day DATE, at TIME(3), ltz TIMESTAMP_LTZ(3),
                  small SMALLINT, tiny TINYINT, f FLOAT, tags ARRAY<STRING>, first_tag STRING, n_tags INT, attrs MAP<STRING, INT>,
                  k INT, addr ROW<street STRING, zip INT>, street STRING, raw BYTES)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='json');
INSERT INTO out
SELECT id, price, price * 2, day, day + INTERVAL '1' DAY, at, ltz, small, tiny, f, tags, tags[1], CAST(CARDINALITY(tags) AS INT),
       attrs, attrs['k'], addr, addr.street, raw
FROM s;
