-- An ML_PREDICT output column selected through the function's alias keeps its name
-- (`m.probability` is `probability`), and the outputs work in WHERE and in expressions.
-- The decision tree of tests/models; its probabilities of class 1 for rows 1-8 are
-- scikit-learn's (tests/models/decision_tree.csv). Above 0.4: rows 2, 4 and 8.
CREATE MODEL tree
INPUT (small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
OUTPUT (probability DOUBLE)
WITH ('provider' = 'pmml', 'path' = '${CASES}/../models/decision_tree.pmml');
CREATE STREAM attempts (id INT, small_count DOUBLE, ratio DOUBLE, age_days DOUBLE, is_foreign DOUBLE, channel VARCHAR)
WITH ('connector' = 'filesystem', 'path' = '${CASES}/attempts.csv', 'format' = 'csv');
CREATE STREAM risky WITH ('connector' = 'filesystem', 'path' = '${OUT}', 'format' = 'json') AS
SELECT id, m.probability, ROUND(m.probability, 3) AS rounded
FROM ML_PREDICT(TABLE attempts, MODEL tree, DESCRIPTOR(small_count, ratio, age_days, is_foreign, channel)) AS m
WHERE m.probability > 0.4;
