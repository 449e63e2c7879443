#!/usr/bin/env python3
"""Side-by-side window benchmark: Eddy, Apache Flink SQL (PyFlink local mini-cluster) and
DuckDB (batch GROUP BY) on the same generated files, in one run on this machine.

  Q1  server logs (CSV), 1-minute tumbling windows per event_type: COUNT(*), COUNT(DISTINCT account_id)
  Q2  transactions (JSON lines), 3-second tumbling windows: SUM, COUNT, AVG, globally and per user_id
  Q3  server logs, the fraud alerts' MATCH_RECOGNIZE (A N*? B WITHIN 5 minutes per account; Eddy and
      Flink only: DuckDB has no MATCH_RECOGNIZE)

Usage: scripts/bench_compare.py [--events N] [--skip-flink] [--skip-duckdb] [--only Q3]
Needs: target/release/eddy (make bench builds it); for the others a virtualenv with
`pip install duckdb apache-flink` (Java 17 for Flink) at target/bench/venv, or on PATH.
Files are generated with `eddy gen --output` under target/bench and reused.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench")
EDDY = os.path.join(ROOT, "target", "release", "eddy")
START_TS = 1767225600


def generate(path, kind, count, users=10):
    if os.path.exists(path):
        return
    subprocess.run([EDDY, "gen", kind, "--count", str(count), "--seed", "1", "--start-ts", str(START_TS),
                    "--step-ms", "1", "--users", str(users), "--output", path], check=True)


def logs_table(path, connector="filesystem"):
    return (f"CREATE TABLE logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, "
            f"event_ts BIGINT, ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
            f"WITH ('connector'='{connector}', 'path'='{path}', 'format'='csv')")


def tx_table(path, flink=False):
    ts = "TO_TIMESTAMP_LTZ(paid_at)" if not flink else "TO_TIMESTAMP(paid_at, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')"
    return (f"CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS {ts}, "
            f"WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'='filesystem', 'path'='{path}', 'format'='json')")


Q1 = ("INSERT INTO bench_out SELECT window_start, event_type, COUNT(*), COUNT(DISTINCT account_id) "
      "FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type")
Q1_OUT = "CREATE TABLE bench_out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT, accounts BIGINT) WITH ('connector'='blackhole')"
Q2 = ("INSERT INTO bench_out SELECT window_start, SUM(amount), COUNT(*), AVG(amount) "
      "FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end")
Q2_OUT = "CREATE TABLE bench_out (window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) WITH ('connector'='blackhole')"
Q2U = ("INSERT INTO bench_out SELECT user_id, window_start, SUM(amount), COUNT(*), AVG(amount) "
       "FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end, user_id")
Q3 = ("INSERT INTO bench_out SELECT event_id, account_id, prev_country, current_country, alert_time FROM logs "
      "MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY ts "
      "MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country, "
      "CAST(B.ts AS TIMESTAMP(3)) AS alert_time "
      "ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE "
      "DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out', "
      "B AS B.event_type = 'login' AND B.location_country <> A.location_country)")
Q3_OUT = ("CREATE TABLE bench_out (event_id VARCHAR, account_id INT, prev_country VARCHAR, current_country VARCHAR, "
          "alert_time TIMESTAMP(3)) WITH ('connector'='blackhole')")
Q2U_OUT = ("CREATE TABLE bench_out (user_id VARCHAR, window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) "
           "WITH ('connector'='blackhole')")


def run_eddy(statements):
    path = os.path.join(BENCH, "compare.sql")
    with open(path, "w") as f:
        f.write(";\n".join(statements) + ";\n")
    start = time.monotonic()
    subprocess.run([EDDY, "run", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, EDDY_LOG="warn"))
    return time.monotonic() - start


def run_flink(statements):
    from pyflink.table import EnvironmentSettings, TableEnvironment
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", "2")
    start = time.monotonic()
    for s in statements[:-1]:
        env.execute_sql(s)
    env.execute_sql(statements[-1]).wait()
    return time.monotonic() - start


def run_duckdb(query):
    import duckdb
    con = duckdb.connect()
    start = time.monotonic()
    con.execute(query).fetchall()
    return time.monotonic() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--skip-flink", action="store_true")
    p.add_argument("--skip-duckdb", action="store_true")
    p.add_argument("--only", help="run only the cases whose name starts with this, e.g. Q3")
    a = p.parse_args()
    n = a.events
    os.makedirs(BENCH, exist_ok=True)
    logs = os.path.join(BENCH, f"server-logs-{n}.csv")
    tx = os.path.join(BENCH, f"transactions-{n}.json")
    tx_many = os.path.join(BENCH, f"transactions-{n}-100000-users.json")
    generate(logs, "server-logs", n)
    if not a.only or not a.only.startswith("Q3"):
        generate(tx, "transactions", n)
        generate(tx_many, "transactions", n, 100_000)

    csv_cols = "{'event_id': 'VARCHAR', 'account_id': 'INTEGER', 'event_type': 'VARCHAR', 'location_country': 'VARCHAR', 'event_ts': 'BIGINT'}"
    cases = [
        ("Q1 logs 1 min per event_type COUNT+DISTINCT",
         [logs_table(logs), Q1_OUT, Q1], [logs_table(logs), Q1_OUT, Q1],
         f"SELECT time_bucket(INTERVAL '1 minute', to_timestamp(event_ts)) AS ws, event_type, count(*), count(DISTINCT account_id) "
         f"FROM read_csv('{logs}', header=false, columns={csv_cols}) GROUP BY ALL"),
        ("Q2 tx 3 s global SUM/COUNT/AVG",
         [tx_table(tx), Q2_OUT, Q2], [tx_table(tx, True), Q2_OUT, Q2],
         f"SELECT time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx}', format='newline_delimited', columns={{'user_id': 'VARCHAR', 'amount': 'DOUBLE', 'paid_at': 'VARCHAR'}}) GROUP BY ALL"),
        ("Q2 tx 3 s per user_id, 10 users",
         [tx_table(tx), Q2U_OUT, Q2U], [tx_table(tx, True), Q2U_OUT, Q2U],
         f"SELECT user_id, time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx}', format='newline_delimited', columns={{'user_id': 'VARCHAR', 'amount': 'DOUBLE', 'paid_at': 'VARCHAR'}}) GROUP BY ALL"),
        ("Q2 tx 3 s per user_id, 100,000 users",
         [tx_table(tx_many), Q2U_OUT, Q2U], [tx_table(tx_many, True), Q2U_OUT, Q2U],
         f"SELECT user_id, time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx_many}', format='newline_delimited', columns={{'user_id': 'VARCHAR', 'amount': 'DOUBLE', 'paid_at': 'VARCHAR'}}) GROUP BY ALL"),
        ("Q3 logs fraud MATCH_RECOGNIZE, 10,000 accounts",
         [logs_table(logs), Q3_OUT, Q3], [logs_table(logs), Q3_OUT, Q3], None),
    ]
    print(f"{'query':<42} {'Eddy':>14} {'Flink':>14} {'DuckDB':>14}   (events/s, {n} events)")
    for name, eddy_sql, flink_sql, duck_sql in cases:
        if a.only and not name.startswith(a.only):
            continue
        cells = []
        cells.append(n / run_eddy(eddy_sql))
        if a.skip_flink:
            cells.append(None)
        else:
            try:
                cells.append(n / run_flink(flink_sql))
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"  flink failed: {e}", file=sys.stderr)
                cells.append(None)
        if a.skip_duckdb or duck_sql is None:
            cells.append(None)
        else:
            try:
                cells.append(n / run_duckdb(duck_sql))
            except Exception as e:  # noqa: BLE001
                print(f"  duckdb failed: {e}", file=sys.stderr)
                cells.append(None)
        print(f"{name:<42} " + " ".join(f"{c:>14,.0f}" if c else f"{'-':>14}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
