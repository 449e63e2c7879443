-- Per customer and 10-hour tumbling window: customers who paid more in store than
-- online, at least 3 times, and whose last payment (by event time) was inside the area
-- 44.57 < lat < 44.91, 20.20 < lon < 20.62. To a CSV file and to PostgreSQL.
CREATE TABLE suspicious_customers_csv (
    customer                      VARCHAR,
    count_transactions            BIGINT,
    total_online_payment_amount   DOUBLE,
    total_in_store_payment_amount DOUBLE,
    lat                           DOUBLE,
    lon                           DOUBLE,
    last_transaction_time         TIMESTAMP(3)
) WITH (
    'connector' = 'filesystem',
    'path' = '${EDDY_BANKING_CSV:-target/banking/suspicious_customers.csv}',
    'format' = 'csv'
);

CREATE TABLE suspicious_customers (
    customer                      VARCHAR,
    count_transactions            BIGINT,
    total_online_payment_amount   DOUBLE,
    total_in_store_payment_amount DOUBLE,
    lat                           DOUBLE,
    lon                           DOUBLE,
    last_transaction_time         TIMESTAMP(3),
    PRIMARY KEY (customer, last_transaction_time) NOT ENFORCED
) WITH (
    'connector' = 'postgres',
    'table-name' = '${EDDY_BANKING_TABLE:-suspicious_customers}'
);

INSERT INTO suspicious_customers_csv
SELECT customer, COUNT(*), SUM(online_payment_amount), SUM(in_store_payment_amount),
       LAST_VALUE(lat), LAST_VALUE(lon), window_end
FROM TABLE(TUMBLE(TABLE transactions_data, DESCRIPTOR(ts), INTERVAL '10' HOURS))
GROUP BY customer, window_start, window_end
HAVING SUM(online_payment_amount) < SUM(in_store_payment_amount)
   AND COUNT(*) >= 3
   AND LAST_VALUE(lat) > 44.57 AND LAST_VALUE(lat) < 44.91
   AND LAST_VALUE(lon) > 20.20 AND LAST_VALUE(lon) < 20.62;

INSERT INTO suspicious_customers
SELECT customer, COUNT(*), SUM(online_payment_amount), SUM(in_store_payment_amount),
       LAST_VALUE(lat), LAST_VALUE(lon), window_end
FROM TABLE(TUMBLE(TABLE transactions_data, DESCRIPTOR(ts), INTERVAL '10' HOURS))
GROUP BY customer, window_start, window_end
HAVING SUM(online_payment_amount) < SUM(in_store_payment_amount)
   AND COUNT(*) >= 3
   AND LAST_VALUE(lat) > 44.57 AND LAST_VALUE(lat) < 44.91
   AND LAST_VALUE(lon) > 20.20 AND LAST_VALUE(lon) < 20.62;
