-- Fraud pipeline, step 2: every event in the PostgreSQL table server_log, with the
-- full country name and the event time as a UTC TIMESTAMP (SCENARIOS.md §1).
-- event_id is the primary key, so a record read twice after a crash is an upsert,
-- not a duplicate row.
CREATE TABLE server_log (
    event_id         VARCHAR PRIMARY KEY,
    account_id       INT,
    event_type       VARCHAR,
    location_country VARCHAR,
    event_time       TIMESTAMP(3)
) WITH (
    'connector'  = 'postgres',
    'url'        = '${EDDY_POSTGRES_URL}',
    'table-name' = '${EDDY_SERVER_LOG_TABLE:-server_log}'
);

INSERT INTO server_log
SELECT
    event_id,
    account_id,
    event_type,
    CASE location_country
        WHEN 'USA' THEN 'United States of America'
        WHEN 'IN'  THEN 'India'
        WHEN 'UK'  THEN 'United Kingdom'
        WHEN 'CA'  THEN 'Canada'
        WHEN 'AU'  THEN 'Australia'
        WHEN 'DE'  THEN 'Germany'
        WHEN 'ES'  THEN 'Spain'
        WHEN 'FR'  THEN 'France'
        WHEN 'NL'  THEN 'Netherlands'
        WHEN 'SG'  THEN 'Singapore'
        WHEN 'RU'  THEN 'Russia'
        WHEN 'JP'  THEN 'Japan'
        WHEN 'BR'  THEN 'Brazil'
        WHEN 'CN'  THEN 'China'
        WHEN 'O'   THEN 'Other'
        ELSE location_country
    END AS location_country,
    TO_TIMESTAMP_SECONDS(event_ts) AS event_time
FROM server_logs;
