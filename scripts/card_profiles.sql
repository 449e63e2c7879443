-- The demo's cardholder profiles (SCENARIOS.md §4), read by the lookup join of
-- queries/notify/03_card_features.sql: one row per card of `eddy gen card-payments`
-- (c-0 .. c-999), its home country as the generator chooses it (HOME_COUNTRIES[card % 5]),
-- an account age of 10 to 3,009 days and an average payment of 20.00 to 499.00. Cards
-- c-990 .. c-999 have no profile: the model scores their attempts with its medians.
DROP TABLE IF EXISTS card_profiles;
CREATE TABLE card_profiles (
    card_id          text PRIMARY KEY,
    home_country     text NOT NULL,
    account_age_days integer NOT NULL,
    avg_amount       double precision NOT NULL
);
INSERT INTO card_profiles
SELECT 'c-' || i, (ARRAY['NL', 'DE', 'BE', 'FR', 'ES'])[i % 5 + 1], 10 + (i * 7919) % 3000, 20 + (i * 104729) % 480
FROM generate_series(0, 989) AS i;
