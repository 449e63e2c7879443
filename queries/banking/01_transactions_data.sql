-- SCENARIOS.md §3: card payments as JSON on the topic `transactions-data`. Event time is transaction_datetime; the watermark runs 60 s behind.
CREATE TABLE transactions_data (
    customer                VARCHAR,
    transaction_type        VARCHAR,
    online_payment_amount   DOUBLE,
    in_store_payment_amount DOUBLE,
    lat                     DOUBLE,
    lon                     DOUBLE,
    transaction_datetime    VARCHAR,
    ts AS TO_TIMESTAMP_LTZ(transaction_datetime),
    WATERMARK FOR ts AS ts - INTERVAL '60' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = '${EDDY_BANKING_TOPIC:-transactions-data}',
    'format' = 'json'
);
