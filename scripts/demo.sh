#!/usr/bin/env bash
# The main job: the fraud pipeline (queries/fraud) on 100,000 generated server-log events.
#   services up -> eddy run queries/fraud -> eddy gen 100,000 events (+3 malformed lines),
#   event times 10 ms apart (1,000 s of events from 10,000 accounts)
#   -> wait until every event is in PostgreSQL and the alerts have settled -> print counts,
#   malformed count, a sample, the number of fraud alerts on the Kafka topic `alerts` and
#   the first five -> stop eddy.
# Then the windowed pipelines of SCENARIOS.md §2 and §3 (queries/revenue, queries/banking)
# on generated, out-of-order events: revenue per 3-second window to Kafka and PostgreSQL,
# suspicious customers per 10-hour window to a CSV file and PostgreSQL; a few windows of
# each are printed. Then the card-testing pipeline of SCENARIOS.md §4 (queries/notify):
# generated card payments with planted attempts, detected, enriched from the PostgreSQL
# table card_profiles, scored by the PMML model and acted on: blocked cards are POSTed to
# a small receiver (scripts/block_card_receiver.py) that prints them. Finally the services
# this script started are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${EDDY_DEMO_COUNT:-100000}
DB=${EDDY_DEMO_DB:-eddy_demo}
TOPIC=server-logs
ALERTS=alerts
OUT=target/demo
PG=postgres://postgres@127.0.0.1:5432
mkdir -p "$OUT"

started_services=0
if ! scripts/services.sh status 2>/dev/null; then
  scripts/services.sh up
  started_services=1
fi
EDDY_PID=
RECEIVER_PID=
cleanup() {
  if [ -n "$RECEIVER_PID" ]; then kill "$RECEIVER_PID" 2>/dev/null || true; fi
  if [ -n "$EDDY_PID" ] && kill -0 "$EDDY_PID" 2>/dev/null; then
    kill -TERM "$EDDY_PID" 2>/dev/null || true
    wait "$EDDY_PID" 2>/dev/null || true
  fi
  if [ "$started_services" = 1 ]; then scripts/services.sh down; fi
}
trap cleanup EXIT

echo "== building eddy"
cargo build --workspace --bins --quiet
EDDY=target/debug/eddy

echo "== fresh database $DB and topic $TOPIC"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$EDDY topics delete "$TOPIC" "$ALERTS" >/dev/null 2>&1 || true
export EDDY_POSTGRES_URL="$PG/$DB"
export EDDY_APPLICATION_ID="demo-$(date +%s)"

echo "== eddy run queries/fraud/"
$EDDY run --checkpoint-interval 1s --status-file "$OUT/status.json" queries/fraud/ >"$OUT/eddy.log" 2>&1 &
EDDY_PID=$!
for _ in $(seq 1 300); do [ -f "$OUT/status.json" ] && break; kill -0 $EDDY_PID || { cat "$OUT/eddy.log"; exit 1; }; sleep 0.1; done

echo "== producing $COUNT events (event times 10 ms apart) and 3 malformed lines"
$EDDY gen server-logs --topic "$TOPIC" --count "$COUNT" --seed 1 --start-ts 1767225600 --step-ms 10
$EDDY produce --topic "$TOPIC" 'hello,world' 'one,two' 'x,notanint,login,RU,1601736282'

echo "== waiting until all $COUNT events are in PostgreSQL"
start=$(date +%s)
while :; do
  n=$(psql "$PG/$DB" -tAc "SELECT count(*) FROM server_log" 2>/dev/null || echo 0)
  printf '\r   %s / %s rows' "$n" "$COUNT"
  [ "$n" -ge "$COUNT" ] && break
  kill -0 $EDDY_PID || { echo; cat "$OUT/eddy.log"; exit 1; }
  [ $(( $(date +%s) - start )) -gt 600 ] && { echo; echo "timed out"; exit 1; }
  sleep 1
done
echo
sleep 1.5   # one more status-file tick

alerts_out() {
  python3 -c 'import json,sys; print(next((q["rows_out"] for q in json.load(open(sys.argv[1]))["queries"] if q["id"]=="insert_alerts"), 0))' "$OUT/status.json" 2>/dev/null || echo 0
}
echo "== waiting until the alerts settle"
last=-1
while :; do
  n=$(alerts_out)
  printf '\r   %s alerts' "$n"
  [ "$n" = "$last" ] && break
  last=$n
  sleep 2
done
echo

echo "== results"
psql "$PG/$DB" -c "SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_event_ids FROM server_log"
python3 - "$OUT/status.json" <<'PY'
import json, sys
for q in json.load(open(sys.argv[1]))["queries"]:
    extra = f", partial matches {q['partial_matches']}, state {q['state_bytes'] / 1e6:.1f} MB" if q["id"] == "insert_alerts" else ""
    print(f"query {q['id']}: {q['status']}, records in {q['rows_in']}, rows out {q['rows_out']}, malformed {q['malformed']}{extra}")
PY
echo "== fraud alerts on Kafka (topic $ALERTS, keyed by account_id): $(alerts_out) alerts"
echo "   (a login from a second country within 5 minutes, no log-out between; the last 5 s of"
echo "   event time wait for later events to move the watermark past them)"
timeout 20 $EDDY topics tail "$ALERTS" --count 5 2>/dev/null | sed 's/^/   /' || true
psql "$PG/$DB" -c "SELECT * FROM server_log ORDER BY event_time, event_id LIMIT 5"
psql "$PG/$DB" -c "SELECT location_country, count(*) FROM server_log GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
grep 'skipped malformed' "$OUT/eddy.log" | sed 's/^/   /' || true
echo "== stopping eddy (flush, commit offsets)"
kill -TERM $EDDY_PID && wait $EDDY_PID && EDDY_PID=

# ---- windows: revenue (§2) and the banking rule (§3) ----
TX_COUNT=${EDDY_DEMO_TX_COUNT:-30000}
BANK_COUNT=${EDDY_DEMO_BANK_COUNT:-20000}
export EDDY_BANKING_CSV="$PWD/$OUT/suspicious_customers.csv"
for t in transactions transactions-late transactions_aggregate_eddy transactions-data; do
  $EDDY topics delete "$t" >/dev/null 2>&1 || true
done
rm -f "$EDDY_BANKING_CSV"
echo "== eddy run queries/revenue/ queries/banking/"
$EDDY run --checkpoint-interval 1s --status-file "$OUT/windows-status.json" queries/revenue/ queries/banking/ >"$OUT/windows.log" 2>&1 &
EDDY_PID=$!
echo "== producing $TX_COUNT payments (10 ms apart, up to 2 s out of order) and $BANK_COUNT card payments (5 s apart)"
$EDDY gen transactions --count "$TX_COUNT" --seed 2 --start-ts 1767225600 --step-ms 10 --disorder-ms 2000
$EDDY gen bank-transactions --count "$BANK_COUNT" --seed 3 --start-ts 1767225600 --step-ms 5000 --disorder-ms 30000
# All partitions go idle 10 s after the last event; the watermark then passes every
# window that ends more than 5 s (revenue) / 60 s (banking) before the last event.
want=$(( (TX_COUNT * 10 - 5000) / 3000 ))
echo "== waiting for the revenue windows (about $want) to settle"
start=$(date +%s); last=-1; stable=0
while :; do
  n=$(psql "$PG/$DB" -tAc "SELECT count(*) FROM transactions_aggregate" 2>/dev/null || echo 0)
  printf '\r   %s windows' "$n"
  if [ "$n" = "$last" ] && [ "$n" -ge "$want" ]; then stable=$((stable + 1)); else stable=0; fi
  [ $stable -ge 3 ] && break
  last=$n
  kill -0 $EDDY_PID || { echo; cat "$OUT/windows.log"; exit 1; }
  [ $(( $(date +%s) - start )) -gt 300 ] && { echo; echo "timed out"; exit 1; }
  sleep 1
done
echo
sleep 1.5
echo "== revenue per 3-second window (PostgreSQL table transactions_aggregate)"
psql "$PG/$DB" -c "SELECT count(*) AS windows, sum(transaction_count) AS transactions, min(window_start), max(window_end) FROM transactions_aggregate"
psql "$PG/$DB" -c "SELECT * FROM transactions_aggregate ORDER BY window_start LIMIT 5"
echo "== the same windows on Kafka (topic transactions_aggregate_eddy, keyed by window_start): first 3"
timeout 20 $EDDY topics tail transactions_aggregate_eddy --count 3 2>/dev/null || true
echo "== suspicious customers per 10-hour window (CSV $EDDY_BANKING_CSV, PostgreSQL suspicious_customers)"
psql "$PG/$DB" -c "SELECT count(*) AS suspicious, count(DISTINCT customer) AS customers FROM suspicious_customers"
head -5 "$EDDY_BANKING_CSV" | sed 's/^/   /'
python3 - "$OUT/windows-status.json" <<'PY'
import json, sys
for q in json.load(open(sys.argv[1]))["queries"]:
    print(f"query {q['id']}: {q['status']}, records in {q['rows_in']}, rows out {q['rows_out']}, late {q['late_rows']}, open windows {q['open_windows']}")
PY
echo "== stopping eddy"
kill -TERM $EDDY_PID && wait $EDDY_PID && EDDY_PID=

# ---- detect, score, act: card-testing attempts (§4) ----
CARD_COUNT=${EDDY_DEMO_CARD_COUNT:-20000}
for t in card-payments card-attempts card-features blocked-cards; do
  $EDDY topics delete "$t" >/dev/null 2>&1 || true
done
echo "== card profiles in PostgreSQL (scripts/card_profiles.sql), the bank's receiver on :8099"
psql "$PG/$DB" -q -f scripts/card_profiles.sql
python3 scripts/block_card_receiver.py 8099 >"$OUT/blocked-cards.log" 2>&1 &
RECEIVER_PID=$!
echo "== eddy run queries/notify/"
$EDDY run --checkpoint-interval 1s --status-file "$OUT/notify-status.json" queries/notify/ >"$OUT/notify.log" 2>&1 &
EDDY_PID=$!
echo "== producing $CARD_COUNT card payments (100 ms apart) with planted card-testing attempts"
$EDDY gen card-payments --topic card-payments --count "$CARD_COUNT" --seed 4 --start-ts 1767225600 --step-ms 100 --partitions 2
echo "== waiting for the scored attempts to settle"
start=$(date +%s); last=-1; stable=0
while :; do
  n=$(psql "$PG/$DB" -tAc "SELECT count(*) FROM card_testing_attempts" 2>/dev/null || echo 0)
  printf '\r   %s attempts scored' "$n"
  if [ "$n" = "$last" ] && [ "$n" -gt 0 ]; then stable=$((stable + 1)); else stable=0; fi
  [ $stable -ge 5 ] && break
  last=$n
  kill -0 $EDDY_PID || { echo; cat "$OUT/notify.log"; exit 1; }
  [ $(( $(date +%s) - start )) -gt 300 ] && { echo; echo "timed out"; exit 1; }
  sleep 1
done
echo
echo "== scored attempts (PostgreSQL table card_testing_attempts): the five most likely, the five least"
psql "$PG/$DB" -c "SELECT count(*) AS attempts, count(*) FILTER (WHERE probability >= 0.9) AS blocked, count(*) FILTER (WHERE home_country IS NULL) AS without_profile FROM card_testing_attempts"
psql "$PG/$DB" -c "(SELECT card_id, payment_id, small_count, large_amount, merchant_country, home_country, round(probability::numeric, 4) AS probability FROM card_testing_attempts ORDER BY probability DESC LIMIT 5) UNION ALL (SELECT card_id, payment_id, small_count, large_amount, merchant_country, home_country, round(probability::numeric, 4) FROM card_testing_attempts ORDER BY probability LIMIT 5)"
echo "== blocked cards on Kafka (topic blocked-cards): first 3"
timeout 20 $EDDY topics tail blocked-cards --count 3 2>/dev/null | sed 's/^/   /' || true
echo "== the bank's receiver printed $(grep -c '^BLOCK' "$OUT/blocked-cards.log" || true) blocked cards; the first 5:"
head -5 "$OUT/blocked-cards.log" | sed 's/^/   /'
echo "== stopping eddy"
kill -TERM $EDDY_PID && wait $EDDY_PID && EDDY_PID=
echo "done: logs in $OUT/eddy.log, $OUT/windows.log and $OUT/notify.log"
