#!/usr/bin/env bash
# Flame graphs of the four file benchmarks of `make bench-compare` (issue 20): Q1, Q1
# without DISTINCT, Q2 global and Q3 over the 10M-row files, one `eddy run` each under
# `perf record --call-graph dwarf` (DWARF unwinding: libc's memcpy has no frame pointers).
#
# Usage: [FREQ=249] [ONLY=q2-global] scripts/flamegraphs.sh [EDDY] [OUT_DIR]
#   FREQ     samples per second; ONLY: the queries to profile (default all four)
#   EDDY     the binary to profile (default target/profiling/eddy, built with
#            `EDDY_KEEP_SYMBOLS=1 cargo build --workspace --bins --profile profiling`)
#   OUT_DIR  where the SVGs and folded stacks go (default docs/perf)
#
# Needs perf (Debian: linux-perf) and inferno (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "$0")/.."
EDDY=${1:-target/profiling/eddy}
OUT=${2:-docs/perf}
BENCH=target/bench
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || { echo "inferno is not installed (cargo install inferno)" >&2; exit 1; }
mkdir -p "$OUT" "$BENCH/flame"
BENCH=$(cd "$BENCH" && pwd)
gen() { [ -f "$1" ] || "$EDDY" gen "$2" --count 10000000 --seed 1 --start-ts 1767225600 --step-ms 1 --users 10 --output "$1"; }
gen "$BENCH/server-logs-10000000.csv" server-logs
gen "$BENCH/transactions-10000000.json" transactions

LOGS="CREATE TABLE logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, event_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
  WITH ('connector'='filesystem', 'path'='$BENCH/server-logs-10000000.csv', 'format'='csv');"
TX="CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR,
  ts AS TO_TIMESTAMP(paid_at, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
  WITH ('connector'='filesystem', 'path'='$BENCH/transactions-10000000.json', 'format'='json');"
TUMBLE_1M="FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type"

cat > "$BENCH/flame/q1.sql" <<EOF
$LOGS
CREATE TABLE bench_out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT, accounts BIGINT) WITH ('connector'='blackhole');
INSERT INTO bench_out SELECT window_start, event_type, COUNT(*), COUNT(DISTINCT account_id) $TUMBLE_1M;
EOF
cat > "$BENCH/flame/q1-without-distinct.sql" <<EOF
$LOGS
CREATE TABLE bench_out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT) WITH ('connector'='blackhole');
INSERT INTO bench_out SELECT window_start, event_type, COUNT(*) $TUMBLE_1M;
EOF
cat > "$BENCH/flame/q2-global.sql" <<EOF
$TX
CREATE TABLE bench_out (window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) WITH ('connector'='blackhole');
INSERT INTO bench_out SELECT window_start, SUM(amount), COUNT(*), AVG(amount)
  FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end;
EOF
cat > "$BENCH/flame/q3.sql" <<EOF
$LOGS
CREATE TABLE bench_out (event_id VARCHAR, account_id INT, prev_country VARCHAR, current_country VARCHAR, alert_time TIMESTAMP(3))
  WITH ('connector'='blackhole');
INSERT INTO bench_out SELECT event_id, account_id, prev_country, current_country, alert_time FROM logs MATCH_RECOGNIZE (
  PARTITION BY account_id ORDER BY ts
  MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country,
    CAST(B.ts AS TIMESTAMP(3)) AS alert_time
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE
  DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out',
    B AS B.event_type = 'login' AND B.location_country <> A.location_country);
EOF

for q in ${ONLY:-q1 q1-without-distinct q2-global q3}; do
  cat "$BENCH/server-logs-10000000.csv" "$BENCH/transactions-10000000.json" > /dev/null   # page cache
  perf record -q -F "${FREQ:-249}" --call-graph dwarf,16384 -o "$BENCH/flame/$q.data" "$EDDY" run "$BENCH/flame/$q.sql" > /dev/null 2>&1
  perf script -i "$BENCH/flame/$q.data" 2>/dev/null | inferno-collapse-perf > "$BENCH/flame/$q.folded"
  inferno-flamegraph --title "eddy run: $q (10M rows, $(date -u +%F))" < "$BENCH/flame/$q.folded" > "$OUT/$q.svg"
  echo "$OUT/$q.svg"
done
