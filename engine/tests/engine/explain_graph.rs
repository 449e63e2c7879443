//! EXPLAIN's operator graph: node ids in pipeline order, each operator's parallelism and
//! state, how rows are distributed between them, and the Graphviz DOT form.

use eddy_engine::{Engine, Session, StatementResult};

const STREAMS: &str =
    "CREATE STREAM pay (ACCOUNT VARCHAR, AMOUNT DOUBLE) WITH (kafka_topic='pay', value_format='json', partitions=4, 'parallelism'='2');";

async fn explain(sql: &str) -> String {
    let mut engine = Engine::new(None, "graph");
    let mut session = Session::default();
    engine.execute(STREAMS, &mut session).await.unwrap_or_else(|e| panic!("{e}"));
    match engine.execute(sql, &mut session).await {
        Ok(mut executed) => match executed.pop().and_then(|mut e| e.results.pop()) {
            Some(StatementResult::Explain { plan, .. }) => plan,
            other => panic!("{other:?}"),
        },
        Err(e) => format!("error: {}", e.error),
    }
}

#[tokio::test]
async fn explain_lists_the_graph_after_the_operators() {
    let plan = explain(
        "EXPLAIN CREATE TABLE totals AS SELECT ACCOUNT, COUNT(*) AS N FROM pay WINDOW TUMBLING (SIZE 1 MINUTE) WHERE AMOUNT > 1 GROUP BY ACCOUNT EMIT CHANGES;",
    )
    .await;
    let graph = plan.split("  graph:\n").nth(1).unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(
        graph,
        "    n0 source x1 state: positions
    n1 decode x2 <- n0 (by partition)
    n2 watermark x2 <- n1 (forward) state: per-partition watermarks
    n3 filter x2 <- n2 (forward)
    n4 window aggregate x2 <- n3 (hash [pay.account] of local partial aggregates) state: open windows and their accumulators
    n5 project x2 <- n4 (forward)
    n6 sink x1 <- n5 (merge)"
    );
}

/// Flink's `table.optimizer.agg-phase-strategy`: `ONE_PHASE` sends the rows themselves
/// across the key exchange, no local pre-aggregation.
#[tokio::test]
async fn one_phase_aggregation_sends_rows_to_the_exchange() {
    let plan = explain(
        "SET 'table.optimizer.agg-phase-strategy' = 'ONE_PHASE';
         EXPLAIN CREATE TABLE totals AS SELECT ACCOUNT, COUNT(*) AS N FROM pay WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY ACCOUNT EMIT CHANGES;",
    )
    .await;
    assert!(plan.contains("    n3 window aggregate x2 <- n2 (hash [pay.account]) state: open windows"), "{plan}");
    let two = explain("SET 'table.optimizer.agg-phase-strategy' = 'two_phase';
         EXPLAIN CREATE TABLE totals AS SELECT ACCOUNT, COUNT(*) AS N FROM pay WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY ACCOUNT EMIT CHANGES;").await;
    assert!(two.contains("    n3 window aggregate x2 <- n2 (hash [pay.account] of local partial aggregates) state"), "{two}");
    let bad = explain("SET 'table.optimizer.agg-phase-strategy' = 'THREE_PHASE';").await;
    assert_eq!(
        bad,
        "error: invalid value 'THREE_PHASE' for property 'table.optimizer.agg-phase-strategy' (line 1, column 1); use one of: AUTO, ONE_PHASE, TWO_PHASE"
    );
}

#[tokio::test]
async fn explain_format_dot_draws_the_graph() {
    let dot = explain("EXPLAIN (FORMAT DOT) CREATE STREAM big AS SELECT ACCOUNT, AMOUNT * 2 AS DOUBLED FROM pay WHERE AMOUNT > 10;").await;
    assert_eq!(
        dot,
        "digraph \"csas_big\" {
  rankdir=LR;
  node [shape=box, fontname=\"monospace\"];
  n0 [label=\"n0: source\\npay (kafka topic=pay format=json partitions=4)\\nparallelism 1\\nstate: positions\"];
  n1 [label=\"n1: decode\\njson\\nparallelism 1\"];
  n2 [label=\"n2: watermark\\nevent time ROWTIME, watermark -0s, idle 10s\\nparallelism 1\\nstate: per-partition watermarks\", style=bold];
  n3 [label=\"n3: filter\\npay.amount > CAST(Int64(10) AS Float64)\\nparallelism 1\"];
  n4 [label=\"n4: project\\naccount := pay.account, doubled := pay.amount * CAST(Int64(2) AS Float64)\\nparallelism 1\"];
  n5 [label=\"n5: sink\\nbig (kafka topic=BIG format=json)\\nparallelism 1\"];
  n0 -> n1 [label=\"forward\"];
  n1 -> n2 [label=\"forward\"];
  n2 -> n3 [label=\"forward\"];
  n3 -> n4 [label=\"forward\"];
  n4 -> n5 [label=\"forward\"];
}"
    );
    assert_eq!(
        explain("EXPLAIN (FORMAT DOT) SELECT * FROM pay;").await,
        "error: EXPLAIN (FORMAT DOT) draws a query: a CREATE ... AS SELECT, an INSERT ... SELECT, a push query or a query id (line 1, column 1); write EXPLAIN (FORMAT DOT) INSERT INTO sink SELECT ..., or EXPLAIN (FORMAT DOT) <query id>"
    );
    assert!(explain("EXPLAIN (FORMAT JSON) SELECT * FROM pay EMIT CHANGES;")
        .await
        .starts_with("error: syntax error: expected DOT or TEXT, found JSON"));
}

#[tokio::test]
async fn a_join_runs_its_front_by_partition_and_the_join_by_key() {
    let plan = explain(
        "CREATE STREAM refunds (ACCOUNT VARCHAR, AMOUNT DOUBLE) WITH (kafka_topic='refunds', value_format='json', partitions=4);
        EXPLAIN CREATE STREAM pairs AS SELECT p.ACCOUNT, p.AMOUNT, r.AMOUNT AS REFUNDED FROM pay p
          JOIN refunds r WITHIN 1 HOUR ON p.ACCOUNT = r.ACCOUNT WHERE r.AMOUNT > 0;",
    )
    .await;
    let graph = plan.split("  graph:\n").nth(1).unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(
        graph,
        "    n0 source x1 state: positions
    n1 join front x2 <- n0 (by partition) state: per-partition watermarks
    n2 interval join x2 <- n1 (hash [p.account] / [r.account]) state: each stream's rows within the bound
    n3 filter x2 <- n2 (forward)
    n4 project x2 <- n3 (forward)
    n5 sink x1 <- n4 (merge)"
    );
}
