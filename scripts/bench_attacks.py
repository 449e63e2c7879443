#!/usr/bin/env python3
"""How fast `eddy server` answers /healthcheck and SHOW STREAMS while hostile or careless
requests run (issue 15's figures). Standard library only.

For each attack, the attack runs in a thread while the main thread asks GET /healthcheck
and POST /ksql SHOW STREAMS every 50 ms; the script prints the median and the worst
answer time of each, and how long the attack itself took and what it got.

Usage: scripts/bench_attacks.py [path to eddy]   (default target/release/eddy, else
target/debug/eddy). Needs the broker on 127.0.0.1:9092 (scripts/services.sh up).
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def silent_port():
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []

    def accept():
        while True:
            conn, _ = listener.accept()
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(url, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # a timeout, a closed connection
        return 0, str(e).encode()


def measure(base, attack):
    result = {}

    def run():
        start = time.monotonic()
        status, body = attack()
        result["took"] = time.monotonic() - start
        result["status"] = status
        result["body"] = body[:120].decode(errors="replace")

    thread = threading.Thread(target=run)
    thread.start()
    health, show = [], []
    time.sleep(0.05)
    while thread.is_alive() or len(health) < 10:
        t = time.monotonic()
        request(base + "/healthcheck", timeout=30)
        health.append(time.monotonic() - t)
        t = time.monotonic()
        request(base + "/ksql", {"ksql": "SHOW STREAMS;", "streamsProperties": {}}, timeout=30)
        show.append(time.monotonic() - t)
        time.sleep(0.05)
    thread.join()
    return result, health, show


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    eddy = sys.argv[1] if len(sys.argv) > 1 else None
    if eddy is None:
        for candidate in ("target/release/eddy", "target/debug/eddy"):
            if os.path.exists(os.path.join(root, candidate)):
                eddy = os.path.join(root, candidate)
                break
    silent = silent_port()
    port = free_port()
    state = tempfile.mkdtemp(prefix="eddy-bench-attacks-")
    server = subprocess.Popen(
        [eddy, "server", "--listen", f"127.0.0.1:{port}", "--state-dir", state, "--allow-host", f"127.0.0.1:{silent}",
         "--allow-path", state],
        stdout=open(os.path.join(state, "server.log"), "w"), stderr=subprocess.STDOUT,
        env=dict(os.environ, EDDY_APPLICATION_ID=f"bench-attacks-{port}"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if request(base + "/healthcheck", timeout=1)[0] == 200:
            break
        time.sleep(0.1)
    topic = f"bench-attacks-{port}"
    request(base + "/ksql", {"ksql": f"CREATE STREAM s (a INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);"
                                     f"CREATE STREAM c WITH (kafka_topic='{topic}-c') AS SELECT a FROM s;", "streamsProperties": {}})
    os.mkfifo(os.path.join(state, "fifo"))
    ksql = lambda sql: (lambda: request(base + "/ksql", {"ksql": sql, "streamsProperties": {}}))
    attacks = [
        ("nothing (baseline)", lambda: (time.sleep(1), (200, b""))[1]),
        ("EXPLAIN with 20,000 terms", ksql("EXPLAIN SELECT " + "+".join(["a"] * 20000) + " AS x FROM s EMIT CHANGES;")),
        ("5,000 statements in one request (refused)", ksql("SHOW STREAMS;" * 5000)),
        ("1,000 statements in one request", ksql("SHOW STREAMS;" * 1000)),
        ("FIFO as a filesystem source", ksql(
            f"CREATE STREAM f (a VARCHAR) WITH ('connector'='filesystem', 'path'='{state}/fifo', 'format'='csv');"
            "CREATE STREAM f2 WITH ('connector'='blackhole') AS SELECT a FROM f;")),
        ("PostgreSQL on a silent host", ksql(
            f"CREATE TABLE pg (a INT) WITH ('connector'='postgres', 'url'='postgres://x@127.0.0.1:{silent}/db', 'table-name'='t');"
            "INSERT INTO pg SELECT a FROM s;")),
        ("topic creation on a silent Kafka", ksql(
            f"CREATE STREAM far (a INT) WITH (kafka_topic='far', value_format='json', partitions=1, "
            f"'properties.bootstrap.servers'='127.0.0.1:{silent}');")),
        ("push query on a silent Kafka", lambda: request(base + "/query-stream", {"sql": "SELECT a FROM far2 EMIT CHANGES;", "properties": {}})),
    ]
    request(base + "/ksql", {"ksql": f"CREATE STREAM far2 (a INT) WITH (kafka_topic='far2', value_format='json', "
                                     f"'properties.bootstrap.servers'='127.0.0.1:{silent}');", "streamsProperties": {}})
    print(f"eddy: {eddy}")
    print(f"{'attack':44} {'attack took':>12} {'status':>6}  {'/healthcheck median / max':>26}  {'SHOW STREAMS median / max':>26}")
    for name, attack in attacks:
        result, health, show = measure(base, attack)
        ms = lambda xs: f"{statistics.median(xs) * 1000:7.1f} / {max(xs) * 1000:7.1f} ms"
        print(f"{name:44} {result['took']:10.2f} s {result['status']:>6}  {ms(health):>26}  {ms(show):>26}")
    alive = server.poll() is None
    print(f"server alive after every attack: {alive}")
    server.terminate()
    server.wait(timeout=30)
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
