-- Card-testing pipeline, step 4 (score and act): a logistic regression exported with
-- sklearn2pmml (models/card_fraud.pmml, made by scripts/make_models.py) gives the
-- probability that an attempt is fraud. Every scored attempt is stored in PostgreSQL;
-- one with probability >= 0.9 blocks the card: a POST to the bank's webhook and a record
-- on the Kafka topic `blocked-cards`.
CREATE MODEL card_fraud
INPUT (small_count BIGINT, ratio DOUBLE, age_days INT, is_foreign BOOLEAN)
OUTPUT (probability DOUBLE)
WITH ('provider' = 'pmml', 'path' = '${EDDY_MODELS_DIR:-models}/card_fraud.pmml');

CREATE TABLE card_testing_attempts (
    payment_id       VARCHAR,
    card_id          VARCHAR,
    paid_at          TIMESTAMP(3),
    small_count      BIGINT,
    large_amount     DOUBLE,
    merchant_country VARCHAR,
    home_country     VARCHAR,
    probability      DOUBLE,
    PRIMARY KEY (payment_id) NOT ENFORCED
) WITH (
    'connector'  = 'postgres',
    'url'        = '${EDDY_POSTGRES_URL}',
    'table-name' = '${EDDY_CARD_TESTING_TABLE:-card_testing_attempts}'
);

INSERT INTO card_testing_attempts
SELECT payment_id, card_id, paid_at, small_count, large_amount, merchant_country, home_country, probability
FROM ML_PREDICT(TABLE card_features, MODEL card_fraud, DESCRIPTOR(small_count, ratio, age_days, is_foreign));

CREATE TABLE blocked_cards (
    card_id     VARCHAR,
    payment_id  VARCHAR,
    probability DOUBLE,
    paid_at     TIMESTAMP(3)
) WITH (
    'connector'  = 'kafka',
    'topic'      = '${EDDY_BLOCKED_CARDS_TOPIC:-blocked-cards}',
    'format'     = 'json',
    'key.fields' = 'card_id',
    'partitions' = '2'
);

INSERT INTO blocked_cards
SELECT card_id, payment_id, probability, paid_at
FROM ML_PREDICT(TABLE card_features, MODEL card_fraud, DESCRIPTOR(small_count, ratio, age_days, is_foreign))
WHERE probability >= 0.9;

-- The bank's webhook: one POST per blocked card, sent once its checkpoint is durable,
-- retried while the receiver is down or failing, each carrying an Idempotency-Key that
-- a retry repeats.
CREATE TABLE block_card (
    card_id     VARCHAR,
    payment_id  VARCHAR,
    probability DOUBLE
) WITH (
    'connector' = 'webhook',
    'url'       = '${EDDY_BLOCK_CARD_URL:-http://127.0.0.1:8099/block-card}',
    'method'    = 'POST',
    'format'    = 'json'
);

INSERT INTO block_card
SELECT card_id, payment_id, probability
FROM ML_PREDICT(TABLE card_features, MODEL card_fraud, DESCRIPTOR(small_count, ratio, age_days, is_foreign))
WHERE probability >= 0.9;
