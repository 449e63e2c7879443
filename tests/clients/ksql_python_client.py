"""The PyPI `ksql` client (ksql-python 0.10.2) against `eddy server`.

Usage: python3 ksql_python_client.py <server url> <topic>
A CREATE, SHOW STREAMS, inserts through `/inserts-stream`, and a push query read with `query(...,
return_objects=True)`: the client streams ksqlDB's `/query` answer line by line and finds
the columns in the header's schema string with an upper-case pattern (its
`utils.parse_columns`), so names and types must be spelled as ksqlDB spells them. Exits
non-zero with the difference when an answer is not what ksqlDB gives.

The client's `hyper` dependency (0.7.0, unmaintained) imports ABCs from `collections`,
which Python 3.10 removed; the aliases below are the usual workaround for any program that
uses this client on a current Python, not something Eddy needs.
"""

import collections
import collections.abc
import sys

for _name in ("Iterable", "Mapping", "MutableMapping", "MutableSet", "Callable"):
    setattr(collections, _name, getattr(collections.abc, _name))

from ksql import KSQLAPI  # noqa: E402


def check(what, got, want):
    if got != want:
        print(f"{what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)


def main():
    url, topic = sys.argv[1], sys.argv[2]
    client = KSQLAPI(url, timeout=30)
    created = client.ksql(f"CREATE STREAM py_clients (ID VARCHAR, N INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);")
    check("CREATE", created[0]["commandStatus"]["status"], "SUCCESS")
    streams = client.ksql("SHOW STREAMS;")[0]["streams"]
    check("SHOW STREAMS", [s["name"] for s in streams if s["topic"] == topic], ["PY_CLIENTS"])
    # hyper's HTTPConnection asks for an h2c upgrade; answered over HTTP/1.1, it stays there.
    acks = client.inserts_stream("PY_CLIENTS", [{"ID": "a", "N": 1}, {"ID": "b", "N": 2}])
    check("inserts", acks, [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}])
    rows = list(
        client.query(
            "SELECT * FROM py_clients EMIT CHANGES LIMIT 2;",
            stream_properties={"ksql.streams.auto.offset.reset": "earliest"},
            return_objects=True,
        )
    )
    check("push rows", rows, [{"ID": "a", "N": 1}, {"ID": "b", "N": 2}])
    print("ksql client: ok")


if __name__ == "__main__":
    main()
