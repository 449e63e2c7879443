-- SCENARIOS.md §3 on a file. Windows align to the epoch (Flink), so 10-hour windows run
-- 18:00-04:00-14:00 UTC. LAST_VALUE is by event time (c1's last row by arrival is
-- outside the area, its last by event time is inside), HAVING on aggregates.
CREATE TABLE transactions_data (
    customer VARCHAR, transaction_type VARCHAR, online_payment_amount DOUBLE, in_store_payment_amount DOUBLE,
    lat DOUBLE, lon DOUBLE, transaction_datetime VARCHAR,
    ts AS TO_TIMESTAMP_LTZ(transaction_datetime),
    WATERMARK FOR ts AS ts - INTERVAL '60' SECOND
) WITH ('connector'='filesystem', 'path'='${CASES}/banking/transactions.json', 'format'='json', 'scan.batch.max-rows'='3', 'parallelism'='${PARALLELISM:-1}');
CREATE TABLE suspicious (customer VARCHAR, count_transactions BIGINT, total_online_payment_amount DOUBLE,
    total_in_store_payment_amount DOUBLE, lat DOUBLE, lon DOUBLE, last_transaction_time TIMESTAMP(3))
WITH ('connector'='filesystem', 'path'='${OUT}', 'format'='csv');
INSERT INTO suspicious
SELECT customer, COUNT(*), SUM(online_payment_amount), SUM(in_store_payment_amount), LAST_VALUE(lat), LAST_VALUE(lon), window_end
FROM TABLE(TUMBLE(TABLE transactions_data, DESCRIPTOR(ts), INTERVAL '10' HOURS))
GROUP BY customer, window_start, window_end
HAVING SUM(online_payment_amount) < SUM(in_store_payment_amount) AND COUNT(*) >= 3
   AND LAST_VALUE(lat) > 44.57 AND LAST_VALUE(lat) < 44.91 AND LAST_VALUE(lon) > 20.20 AND LAST_VALUE(lon) < 20.62;
