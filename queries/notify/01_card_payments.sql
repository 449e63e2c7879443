-- Card-testing pipeline, step 1 (SCENARIOS.md §4): the payments and the card profiles.
-- One JSON record per card payment, keyed by card_id (`eddy gen card-payments`); paid_at
-- is the event time, and the watermark trails the largest paid_at seen by 10 seconds.
CREATE TABLE card_payments (
    payment_id       VARCHAR,
    card_id          VARCHAR,
    merchant_country VARCHAR,
    amount           DOUBLE,
    paid_at          TIMESTAMP(3),
    WATERMARK FOR paid_at AS paid_at - INTERVAL '10' SECOND
) WITH (
    'connector'          = 'kafka',
    'topic'              = '${EDDY_CARD_PAYMENTS_TOPIC:-card-payments}',
    'format'             = 'json',
    'scan.startup.mode'  = 'earliest-offset',
    'partitions'         = '2'
);

-- The cardholders' profiles live in PostgreSQL (`scripts/card_profiles.sql` fills the
-- demo's). Declared as Flink's JDBC connector declares them; a lookup join reads the
-- profiles of the cards in each micro-batch with one query, and keeps them for a minute.
CREATE TABLE card_profiles (
    card_id          VARCHAR,
    home_country     VARCHAR,
    account_age_days INT,
    avg_amount       DOUBLE,
    PRIMARY KEY (card_id) NOT ENFORCED
) WITH (
    'connector'                              = 'jdbc',
    'url'                                    = '${EDDY_POSTGRES_URL}',
    'table-name'                             = '${EDDY_CARD_PROFILES_TABLE:-card_profiles}',
    'lookup.cache'                           = 'PARTIAL',
    'lookup.partial-cache.max-rows'          = '100000',
    'lookup.partial-cache.expire-after-write' = '1 min'
);
