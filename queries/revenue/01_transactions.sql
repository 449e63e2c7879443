-- SCENARIOS.md §2: payments as JSON on the topic `transactions`.
-- Event time is paid_at (ISO-8601); rows may arrive up to 5 s out of order. Rows later
-- than that miss their window: they are counted (late_rows) and copied, bytes as read,
-- to the late-rows topic.
CREATE TABLE transactions (
    user_id VARCHAR,
    amount  DOUBLE,
    paid_at VARCHAR,
    ts AS TO_TIMESTAMP_LTZ(paid_at),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = '${EDDY_TRANSACTIONS_TOPIC:-transactions}',
    'format' = 'json',
    'late-rows.topic' = '${EDDY_TRANSACTIONS_LATE_TOPIC:-transactions-late}'
);
