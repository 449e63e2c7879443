// The npm ksqldb-client (HTTP/2 only, prior knowledge) against `eddy server`.
// Usage: node npm_client.js <host url> <port> <topic>   (ksqldb-client installed beside it)
// A CREATE, two inserts through /inserts-stream, a push query with LIMIT, SHOW STREAMS and
// DESCRIBE; exits non-zero with the difference when an answer is not what ksqlDB gives.
const KsqldbClient = require("ksqldb-client");
const assert = require("assert");

(async () => {
  const [host, port, topic] = process.argv.slice(2);
  const client = new KsqldbClient({ host, port: Number(port) });
  await client.connect();
  const created = await client.executeStatement(
    `CREATE STREAM npm_clients (ID VARCHAR, N INT) WITH (kafka_topic='${topic}', value_format='json', partitions=1);`
  );
  assert.strictEqual(created.status, 200, JSON.stringify(created));
  for (const row of [{ ID: "a", N: 1 }, { ID: "b", N: 2 }]) {
    const inserted = await client.insertInto("NPM_CLIENTS", row);
    assert.deepStrictEqual(inserted.data.rows, [{ seq: 0, status: "ok" }], JSON.stringify(inserted));
  }
  const result = await client.query("SELECT * FROM npm_clients EMIT CHANGES LIMIT 2;", { properties: { "auto.offset.reset": "earliest" } });
  assert.deepStrictEqual(result.data.metadata.columnTypes, ["STRING", "INTEGER"], JSON.stringify(result));
  assert.deepStrictEqual(result.data.rows, [{ ID: "a", N: 1 }, { ID: "b", N: 2 }], JSON.stringify(result));
  const streams = await client.listStreams();
  assert.ok(streams.some((s) => s.name === "NPM_CLIENTS"), JSON.stringify(streams));
  const described = await client.describeSource("npm_clients");
  assert.deepStrictEqual(described.fields.map((f) => [f.name, f.schema.type]), [["ID", "STRING"], ["N", "INTEGER"]], JSON.stringify(described));
  await client.disconnect();
  console.log("npm ksqldb-client: ok");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
