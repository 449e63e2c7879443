#!/usr/bin/env python3
"""Side-by-side window benchmark: Eddy, Apache Flink SQL (PyFlink local mini-cluster) and
DuckDB (batch GROUP BY) on the same generated files, in one run on this machine.

  Q1  server logs (CSV), 1-minute tumbling windows per event_type: COUNT(*), COUNT(DISTINCT account_id),
      and the same without the DISTINCT
  Q2  transactions (JSON lines), 3-second tumbling windows: SUM, COUNT, AVG, globally and per user_id
  Q3  server logs, the fraud alerts' MATCH_RECOGNIZE (A N*? B WITHIN 5 minutes per account; Eddy and
      Flink only: DuckDB has no MATCH_RECOGNIZE)

Eddy and Flink run the same text: Flink's own DDL and statements. Flink is timed twice: its
net job time (from its first statement to the job's end, inside the process) and its process
wall time (Python, the JVM and the mini-cluster started too), which is what a user of
`sql-client.sh -f` waits for. DuckDB gets 2 threads (`SET threads = 2`).

Each engine finds the input in the page cache (the file is read once before each run). Every
figure is printed with the machine's state when it was taken: the 1-minute load average before
the case and how much of the input file is in the page cache then (fincore); once per run the
CPU, the memory available, and each file with its size and the `eddy gen` command (seed) that
made it.

Usage: scripts/bench_compare.py [--events N] [--eddy PATH] [--skip-flink] [--skip-duckdb] [--only Q3]
Needs: an Eddy binary (target/release/eddy from `make bench`, else target/profiling/eddy, or
--eddy); for the others a virtualenv with `pip install duckdb apache-flink` (Java 17 for Flink)
at target/bench/venv, or on PATH. Files are generated with `eddy gen --output` under
target/bench and reused.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "bench")
EDDY = os.path.join(ROOT, "target", "release", "eddy")
START_TS = 1767225600
SEED = 1


def gen_command(path, kind, count, users=10):
    return [EDDY, "gen", kind, "--count", str(count), "--seed", str(SEED), "--start-ts", str(START_TS),
            "--step-ms", "1", "--users", str(users), "--output", path]


def generate(path, kind, count, users=10):
    if os.path.exists(path):
        return
    subprocess.run(gen_command(path, kind, count, users), check=True)


def cached_percent(path):
    """The share of `path` in the page cache (fincore), or None without fincore."""
    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", path], capture_output=True, text=True)
    try:
        res, size = (int(x) for x in out.stdout.split()[:2])
        return 100.0 * res / max(size, 1)
    except ValueError:
        return None


def warm(path):
    """Reads `path` once, so the engine that runs next finds it in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def machine():
    def field(path, name):
        try:
            with open(path) as f:
                return next(line.split(":", 1)[1].strip() for line in f if line.startswith(name))
        except (OSError, StopIteration):
            return "?"
    return (f"{field('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores, "
            f"{field('/proc/meminfo', 'MemAvailable')} available, {platform.system()} {platform.release()}")


def logs_table(path):
    return (f"CREATE TABLE logs (event_id VARCHAR, account_id INT, event_type VARCHAR, location_country VARCHAR, "
            f"event_ts BIGINT, ts AS TO_TIMESTAMP_LTZ(event_ts, 0), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) "
            f"WITH ('connector'='filesystem', 'path'='{path}', 'format'='csv')")


def tx_table(path):
    ts = "TO_TIMESTAMP(paid_at, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z''')"
    return (f"CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, paid_at VARCHAR, ts AS {ts}, "
            f"WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector'='filesystem', 'path'='{path}', 'format'='json')")


Q1 = ("INSERT INTO bench_out SELECT window_start, event_type, COUNT(*), COUNT(DISTINCT account_id) "
      "FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type")
Q1_OUT = "CREATE TABLE bench_out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT, accounts BIGINT) WITH ('connector'='blackhole')"
Q1N = ("INSERT INTO bench_out SELECT window_start, event_type, COUNT(*) "
       "FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, event_type")
Q1N_OUT = "CREATE TABLE bench_out (window_start TIMESTAMP(3), event_type VARCHAR, n BIGINT) WITH ('connector'='blackhole')"
Q2 = ("INSERT INTO bench_out SELECT window_start, SUM(amount), COUNT(*), AVG(amount) "
      "FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end")
Q2_OUT = "CREATE TABLE bench_out (window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) WITH ('connector'='blackhole')"
Q2U = ("INSERT INTO bench_out SELECT user_id, window_start, SUM(amount), COUNT(*), AVG(amount) "
       "FROM TABLE(TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '3' SECONDS)) GROUP BY window_start, window_end, user_id")
Q2U_OUT = ("CREATE TABLE bench_out (user_id VARCHAR, window_start TIMESTAMP(3), total DOUBLE, n BIGINT, average DOUBLE) "
           "WITH ('connector'='blackhole')")
Q3 = ("INSERT INTO bench_out SELECT event_id, account_id, prev_country, current_country, alert_time FROM logs "
      "MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY ts "
      "MEASURES B.event_id AS event_id, A.location_country AS prev_country, B.location_country AS current_country, "
      "CAST(B.ts AS TIMESTAMP(3)) AS alert_time "
      "ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE "
      "DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out', "
      "B AS B.event_type = 'login' AND B.location_country <> A.location_country)")
Q3_OUT = ("CREATE TABLE bench_out (event_id VARCHAR, account_id INT, prev_country VARCHAR, current_country VARCHAR, "
          "alert_time TIMESTAMP(3)) WITH ('connector'='blackhole')")


def run_eddy(statements):
    path = os.path.join(BENCH, "compare.sql")
    with open(path, "w") as f:
        f.write(";\n".join(statements) + ";\n")
    start = time.monotonic()
    subprocess.run([EDDY, "run", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, EDDY_LOG="warn"))
    return time.monotonic() - start


def flink_job(statements):
    """Runs in a fresh Python process (--flink-job): prints the net job time as JSON."""
    from pyflink.table import EnvironmentSettings, TableEnvironment
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", "2")
    start = time.monotonic()
    for s in statements[:-1]:
        env.execute_sql(s)
    env.execute_sql(statements[-1]).wait()
    print(json.dumps({"net": time.monotonic() - start}))


def run_flink(statements):
    """(net job time, process wall time) of Flink in a process of its own, JVM start included."""
    start = time.monotonic()
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--flink-job", json.dumps(statements)],
                         capture_output=True, text=True)
    wall = time.monotonic() - start
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])["net"], wall


def run_duckdb(query):
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 2")
    start = time.monotonic()
    con.execute(query).fetchall()
    return time.monotonic() - start


def main():
    global EDDY
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--eddy", help="the eddy binary (default: target/release/eddy, else target/profiling/eddy)")
    p.add_argument("--skip-flink", action="store_true")
    p.add_argument("--skip-duckdb", action="store_true")
    p.add_argument("--only", help="run only the cases whose name starts with this, e.g. Q3")
    p.add_argument("--flink-job", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.flink_job:
        flink_job(json.loads(a.flink_job))
        return
    if a.eddy:
        EDDY = os.path.abspath(a.eddy)
    elif not os.path.exists(EDDY):
        EDDY = os.path.join(ROOT, "target", "profiling", "eddy")
    n = a.events
    os.makedirs(BENCH, exist_ok=True)
    logs = os.path.join(BENCH, f"server-logs-{n}.csv")
    tx = os.path.join(BENCH, f"transactions-{n}.json")
    tx_many = os.path.join(BENCH, f"transactions-{n}-100000-users.json")
    files = [(logs, "server-logs", 10)]
    if not a.only or not a.only.startswith("Q3"):
        files += [(tx, "transactions", 10), (tx_many, "transactions", 100_000)]
    for path, kind, users in files:
        generate(path, kind, n, users)

    print(f"machine: {machine()}")
    print(f"eddy: {EDDY}")
    for path, kind, users in files:
        cmd = " ".join(["eddy"] + gen_command(os.path.basename(path), kind, n, users)[1:])
        print(f"file: {path} ({os.path.getsize(path) / 1e6:,.0f} MB), made by `{cmd}`")

    csv_cols = "{'event_id': 'VARCHAR', 'account_id': 'INTEGER', 'event_type': 'VARCHAR', 'location_country': 'VARCHAR', 'event_ts': 'BIGINT'}"
    tx_cols = "{'user_id': 'VARCHAR', 'amount': 'DOUBLE', 'paid_at': 'VARCHAR'}"
    read_logs = f"read_csv('{logs}', header=false, columns={csv_cols})"
    cases = [
        ("Q1 1 min per event_type COUNT+DISTINCT", logs, [logs_table(logs), Q1_OUT, Q1],
         f"SELECT time_bucket(INTERVAL '1 minute', to_timestamp(event_ts)) AS ws, event_type, count(*), "
         f"count(DISTINCT account_id) FROM {read_logs} GROUP BY ALL"),
        ("Q1 without DISTINCT", logs, [logs_table(logs), Q1N_OUT, Q1N],
         f"SELECT time_bucket(INTERVAL '1 minute', to_timestamp(event_ts)) AS ws, event_type, count(*) FROM {read_logs} GROUP BY ALL"),
        ("Q2 3 s global SUM/COUNT/AVG", tx, [tx_table(tx), Q2_OUT, Q2],
         f"SELECT time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx}', format='newline_delimited', columns={tx_cols}) GROUP BY ALL"),
        ("Q2 per user_id, 10 users", tx, [tx_table(tx), Q2U_OUT, Q2U],
         f"SELECT user_id, time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx}', format='newline_delimited', columns={tx_cols}) GROUP BY ALL"),
        ("Q2 per user_id, 100,000 users", tx_many, [tx_table(tx_many), Q2U_OUT, Q2U],
         f"SELECT user_id, time_bucket(INTERVAL '3 seconds', paid_at::TIMESTAMP) AS ws, sum(amount), count(*), avg(amount) "
         f"FROM read_json('{tx_many}', format='newline_delimited', columns={tx_cols}) GROUP BY ALL"),
        ("Q3 fraud MATCH_RECOGNIZE, 10,000 accounts", logs, [logs_table(logs), Q3_OUT, Q3], None),
    ]
    print(f"events/s over {n:,} events. Flink: net job time, then process wall time. "
          f"load: 1-min load average before the case; cached: share of the file in the page cache")
    print(f"{'query':<40} {'Eddy':>11} {'Flink net':>11} {'Flink wall':>11} {'DuckDB':>11} {'Eddy/DuckDB':>11}  machine")
    for name, path, statements, duck_sql in cases:
        if a.only and not name.startswith(a.only):
            continue
        warm(path)
        load, cached = os.getloadavg()[0], cached_percent(path)
        eddy = n / run_eddy(statements)
        flink = (None, None)
        if not a.skip_flink:
            try:
                warm(path)
                net, wall = run_flink(statements)
                flink = (n / net, n / wall)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"  flink failed: {e}", file=sys.stderr)
        duck = None
        if not a.skip_duckdb and duck_sql is not None:
            try:
                warm(path)
                duck = n / run_duckdb(duck_sql)
            except Exception as e:  # noqa: BLE001
                print(f"  duckdb failed: {e}", file=sys.stderr)
        cells = " ".join(f"{c:>11,.0f}" if c else f"{'-':>11}" for c in [eddy, flink[0], flink[1], duck])
        ratio = f"{eddy / duck:>11.2f}" if duck else f"{'-':>11}"
        state = f"load {load:.2f}" + (f", cached {cached:.0f}%" if cached is not None else "")
        print(f"{name:<40} {cells} {ratio}  {state}", flush=True)


if __name__ == "__main__":
    main()
