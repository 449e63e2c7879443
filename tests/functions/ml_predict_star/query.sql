-- ML_PREDICT's `*`: the table's columns, then the model's OUTPUT columns. The decision
-- tree of tests/models gives each row its leaf's class distribution: `probability` (a
-- DOUBLE) is that of the last class, 1; `label` (a VARCHAR) the predicted class. The
-- probabilities are scikit-learn's (tests/models/decision_tree.csv, rows 1-8), exactly.
CREATE MODEL tree
INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
OUTPUT (probability DOUBLE, label VARCHAR)
WITH ('provider' = 'pmml', 'path' = 'file://${CASES}/../models/decision_tree.pmml');
CREATE STREAM attempts (id INT, small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
WITH ('connector' = 'filesystem', 'path' = '${CASES}/attempts.csv', 'format' = 'csv');
CREATE TABLE scored (id INT, small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR,
                     probability DOUBLE, label VARCHAR)
WITH ('connector' = 'filesystem', 'path' = '${OUT}', 'format' = 'csv');
INSERT INTO scored
SELECT * FROM ML_PREDICT(TABLE attempts, MODEL tree, DESCRIPTOR(small_count, ratio, age_days, is_foreign, channel));
