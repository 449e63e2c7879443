-- Card-testing pipeline, step 2 (detect): three or more payments under 2.00 on one card,
-- then a payment over 500.00, all within 10 minutes, are a card-testing attempt. One row
-- per attempt on the Kafka topic `card-attempts`, with the large payment's id, time and
-- merchant country.
--
-- proc_time is not written: it is computed when the attempt is read again (step 3), as
-- the time its profile is looked up.
CREATE TABLE card_attempts (
    payment_id       VARCHAR,
    card_id          VARCHAR,
    small_count      BIGINT,
    large_amount     DOUBLE,
    merchant_country VARCHAR,
    paid_at          TIMESTAMP(3),
    proc_time AS PROCTIME()
) WITH (
    'connector'         = 'kafka',
    'topic'             = '${EDDY_CARD_ATTEMPTS_TOPIC:-card-attempts}',
    'format'            = 'json',
    'scan.startup.mode' = 'earliest-offset',
    'key.fields'        = 'card_id',
    'partitions'        = '2'
);

INSERT INTO card_attempts
SELECT payment_id, card_id, small_count, large_amount, merchant_country, paid_at
FROM card_payments
MATCH_RECOGNIZE (
    PARTITION BY card_id
    ORDER BY paid_at
    MEASURES
        L.payment_id       AS payment_id,
        COUNT(S.amount)    AS small_count,
        L.amount           AS large_amount,
        L.merchant_country AS merchant_country,
        L.paid_at          AS paid_at
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (S{3,} L) WITHIN INTERVAL '10' MINUTE
    DEFINE
        S AS S.amount < 2.00,
        L AS L.amount > 500.00
);
