"""The PyPI `ksqldb` client (HTTP/2 for push queries and inserts) against `eddy server`.

Usage: python3 ksqldb_client.py <server url> <topic>
A CREATE, an insert through /inserts-stream, a push query with LIMIT, a DESCRIBE and
SHOW PROPERTIES; exits non-zero with the difference when an answer is not ksqlDB's shape.
"""

import asyncio
import sys

from ksqldb import KSQLdbClient


def check(what, got, want):
    if got != want:
        print(f"{what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)


def main():
    url, topic = sys.argv[1], sys.argv[2]
    client = KSQLdbClient(url)
    created = client.ksql(f"CREATE STREAM clients (ID VARCHAR, N INT) WITH (kafka_topic='{topic}', value_format='json', partitions=1);")
    check("CREATE", created[0]["commandStatus"]["status"], "SUCCESS")
    acks = client.inserts_stream("CLIENTS", [{"ID": "a", "N": 1}, {"ID": "b", "N": 2}])
    check("inserts", acks, [{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}])

    async def push():
        rows = []
        async for x in client.query_async(
            "SELECT * FROM clients EMIT CHANGES LIMIT 2;", stream_properties={"auto.offset.reset": "earliest"}, timeout=30
        ):
            rows.append(x)
        return rows

    rows = asyncio.run(push())
    check("push header", rows[0]["columnTypes"], ["STRING", "INTEGER"])
    check("push rows", rows[1:], [["a", 1], ["b", 2]])
    fields = client.ksql("DESCRIBE clients;")[0]["sourceDescription"]["fields"]
    check("DESCRIBE", [(f["name"], f["schema"]["type"]) for f in fields], [("ID", "STRING"), ("N", "INTEGER")])
    properties = client.get_properties()
    check("SHOW PROPERTIES entries", all({"name", "scope", "value"} <= set(p) for p in properties) and len(properties) > 0, True)
    print("ksqldb client: ok")


if __name__ == "__main__":
    main()
