-- ML_PREDICT (Flink 2.1) with a PMML model: the logistic regression of tests/models
-- (scikit-learn via sklearn2pmml; a scaler, imputers and a one-hot encoder in front)
-- scores each attempt. Row 1 misses its channel and row 6 its small_count: the model's
-- missing value replacements fill them. The probabilities are scikit-learn's own
-- (tests/models/logistic_regression.csv, rows 1-8), rounded to 9 places; the WHERE on the
-- output column keeps those above 0.2: rows 2, 4, 5 and 8.
CREATE MODEL card_fraud
INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
OUTPUT (probability DOUBLE)
WITH ('provider' = 'pmml', 'path' = '${CASES}/../models/logistic_regression.pmml');
CREATE STREAM attempts (id INT, small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
WITH ('connector' = 'filesystem', 'path' = '${CASES}/attempts.csv', 'format' = 'csv');
CREATE TABLE scored (id INT, probability DOUBLE, channel VARCHAR)
WITH ('connector' = 'filesystem', 'path' = '${OUT}', 'format' = 'csv');
INSERT INTO scored
SELECT id, ROUND(probability, 9), channel
FROM ML_PREDICT(TABLE attempts, MODEL card_fraud, DESCRIPTOR(small_count, ratio, age_days, is_foreign, channel))
WHERE probability > 0.2;
