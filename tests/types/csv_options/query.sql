-- Flink's csv options with Flink's meaning: 'csv.field-delimiter', 'csv.quote-character',
-- 'csv.escape-character' and 'csv.allow-comments' (lines starting with '#' are skipped).
-- Line 4's amount is not a number: skipped and counted ('csv.ignore-parse-errors').
-- The output uses the same options, so the quoted field with the delimiter is quoted again.
CREATE TABLE src (id INT, name STRING, amount DOUBLE)
WITH ('connector'='filesystem', 'path'='file://${CASES}/csv_options/lines.csv', 'format'='csv',
      'csv.field-delimiter'=';', 'csv.quote-character'='''', 'csv.escape-character'='\', 'csv.allow-comments'='true',
      'csv.ignore-parse-errors'='true');
CREATE TABLE out (id INT, name STRING, amount DOUBLE)
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv', 'csv.field-delimiter'=';', 'csv.quote-character'='''');
INSERT INTO out SELECT id, name, amount FROM src;
