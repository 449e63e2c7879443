-- Card-testing pipeline, step 3 (enrich): each attempt joined with its card's profile as
-- it is when the attempt is processed (Flink's lookup join), and the model's features
-- computed: the large amount against the card's average, and whether the merchant is
-- abroad. A card without a profile is kept (LEFT JOIN): its features are NULL, and the
-- model fills them with its missing-value replacements.
CREATE TABLE card_features (
    payment_id       VARCHAR,
    card_id          VARCHAR,
    paid_at          TIMESTAMP(3),
    merchant_country VARCHAR,
    home_country     VARCHAR,
    large_amount     DOUBLE,
    small_count      BIGINT,
    ratio            DOUBLE,
    age_days         INT,
    is_foreign       BOOLEAN
) WITH (
    'connector'         = 'kafka',
    'topic'             = '${EDDY_CARD_FEATURES_TOPIC:-card-features}',
    'format'            = 'json',
    'scan.startup.mode' = 'earliest-offset',
    'key.fields'        = 'card_id',
    'partitions'        = '2'
);

INSERT INTO card_features
SELECT
    a.payment_id,
    a.card_id,
    a.paid_at,
    a.merchant_country,
    p.home_country,
    a.large_amount,
    a.small_count,
    a.large_amount / p.avg_amount       AS ratio,
    p.account_age_days                  AS age_days,
    a.merchant_country <> p.home_country AS is_foreign
FROM card_attempts AS a
LEFT JOIN card_profiles FOR SYSTEM_TIME AS OF a.proc_time AS p
    ON a.card_id = p.card_id;
