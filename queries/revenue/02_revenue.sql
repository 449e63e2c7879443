-- Revenue per 3-second tumbling window of event time: total, count and average, to
-- Kafka (keyed by window_start) and to PostgreSQL (upserted on window_start). One row
-- per window once the watermark passes its end (EMIT FINAL, Flink's default).
CREATE TABLE transactions_aggregate_eddy (
    window_start      TIMESTAMP(3),
    window_end        TIMESTAMP(3),
    total_amount      DOUBLE,
    transaction_count BIGINT,
    average_amount    DOUBLE
) WITH (
    'connector' = 'kafka',
    'topic' = '${EDDY_REVENUE_TOPIC:-transactions_aggregate_eddy}',
    'format' = 'json',
    'key.fields' = 'window_start'
);

CREATE TABLE transactions_aggregate (
    window_start      TIMESTAMP(3),
    window_end        TIMESTAMP(3),
    total_amount      DOUBLE,
    transaction_count BIGINT,
    average_amount    DOUBLE,
    PRIMARY KEY (window_start) NOT ENFORCED
) WITH (
    'connector' = 'postgres',
    'table-name' = '${EDDY_REVENUE_TABLE:-transactions_aggregate}'
);

INSERT INTO transactions_aggregate_eddy
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE transactions, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
GROUP BY window_start, window_end;

INSERT INTO transactions_aggregate
SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount)
FROM TABLE(TUMBLE(TABLE transactions, DESCRIPTOR(ts), INTERVAL '3' SECONDS))
GROUP BY window_start, window_end;
