//! Restoring a checkpoint gives the same results as never stopping (golden comparison,
//! issue 6): each stateful operator (window aggregates of three kinds, MATCH_RECOGNIZE,
//! watermarks) is run over the same input twice. Once without a stop; once stopped after
//! a barrier at each of several points, its snapshot written to a real checkpoint
//! directory (Arrow IPC files), read back, restored into fresh operators and fed the
//! rest of the input. The output rows must be equal, also when the restored query runs
//! on 2 or 3 workers instead of 1 (the state is split by key as the exchange splits rows).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use eddy_engine::connector::{PartitionOffset, Progress};
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::operator::{Collector, Message, Operator};
use eddy_engine::operators::{MatchRecognize, MetaColumns, WindowAggregate};
use eddy_engine::partitioning::route_by_key;
use eddy_engine::runtime::snapshot::{states_for, StateEntry};
use eddy_engine::runtime::CheckpointStore;
use eddy_engine::sql::planner::QueryPlan;

use crate::common::{operator_input, plan_query};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STREAM: &str = "CREATE STREAM logs (account_id INT, event_type VARCHAR, country VARCHAR, amount BIGINT, at BIGINT) \
                      WITH (kafka_topic='logs', value_format='json', timestamp='at');\n";

fn plan(query: &str) -> Arc<QueryPlan> {
    plan_query(&format!("{STREAM}{query}"))
}

fn input_schema(plan: &QueryPlan) -> SchemaRef {
    operator_input(plan, MetaColumns::Position)
}

const TYPES: [&str; 4] = ["login", "click", "log-out", "purchase"];
const COUNTRIES: [&str; 4] = ["DE", "US", "FR", "IN"];

/// What the operators are fed: batches of events and watermarks, in order.
enum Step {
    Rows(RecordBatch),
    Watermark(i64),
}

/// 40 batches of 50 events of 30 accounts, out of order within 4 s, with a watermark
/// 5 s behind the largest event time after each batch.
fn input(schema: &SchemaRef, seed: u64) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let mut offset = 0i64;
    let mut max = 0i64;
    for b in 0..40i64 {
        let n = 50;
        let at: Vec<i64> = (0..n).map(|i| 1_700_000_000_000 + (b * 50 + i) * 200 - rng.random_range(0..4_000)).collect();
        max = max.max(at.iter().copied().max().unwrap_or(0));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values((0..n).map(|_| rng.random_range(0..30)))),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| TYPES[rng.random_range(0..TYPES.len())]))),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| COUNTRIES[rng.random_range(0..COUNTRIES.len())]))),
            Arc::new(Int64Array::from_iter_values((0..n).map(|_| rng.random_range(1..100)))),
            Arc::new(Int64Array::from(at.clone())),
            Arc::new(Int32Array::from(vec![0; n as usize])),
            Arc::new(Int64Array::from_iter_values(offset..offset + n)),
            Arc::new(TimestampMillisecondArray::from(vec![None; n as usize])),
            Arc::new(TimestampMillisecondArray::from(at)),
        ];
        offset += n;
        steps.push(Step::Rows(RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("{e}"))));
        steps.push(Step::Watermark(max - 5_000));
    }
    steps.push(Step::Watermark(i64::MAX));
    steps
}

/// Every output row as text, sorted (workers emit in their own order).
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    let options = FormatOptions::default();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        for r in 0..b.num_rows() {
            out.push(formatters.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    out.sort();
    out
}

/// Feeds `steps` to `ops` (one per worker; rows split by account as the exchange does)
/// and returns what they emitted.
fn feed(ops: &mut [Box<dyn Operator>], steps: &[Step]) -> Vec<RecordBatch> {
    let mut out = Collector::default();
    let mut emitted = Vec::new();
    for step in steps {
        match step {
            Step::Rows(batch) => {
                let route = route_by_key(&[batch.column(0).clone()], batch.num_rows(), ops.len()).unwrap_or_else(|e| panic!("{e}"));
                for (w, op) in ops.iter_mut().enumerate() {
                    let keep = arrow::array::BooleanArray::from_iter(route.iter().map(|r| Some(*r == w)));
                    let mine = arrow::compute::filter_record_batch(batch, &keep).unwrap_or_else(|e| panic!("{e}"));
                    if mine.num_rows() > 0 {
                        op.on_batch(mine, &mut out).unwrap_or_else(|e| panic!("{e}"));
                    }
                }
            }
            Step::Watermark(w) => {
                for op in ops.iter_mut() {
                    op.on_watermark(*w, &mut out).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        for m in out.take() {
            if let Message::Batch(b) = m {
                emitted.push(b);
            }
        }
    }
    emitted
}

/// Runs `steps` through `before` workers, stops after step `cut` (after a barrier),
/// writes the checkpoint, restores it into `after` fresh workers and runs the rest.
fn stopped_at(
    make: &dyn Fn() -> Box<dyn Operator>,
    steps: &[Step],
    cut: usize,
    before: usize,
    after: usize,
    dir: &std::path::Path,
) -> Vec<String> {
    let _ = std::fs::remove_dir_all(dir);
    let mut ops: Vec<Box<dyn Operator>> = (0..before).map(|_| make()).collect();
    let mut emitted = feed(&mut ops, &steps[..cut]);
    let mut out = Collector::default();
    let mut entries = Vec::new();
    for (w, op) in ops.iter_mut().enumerate() {
        op.on_barrier(1, &mut out).unwrap_or_else(|e| panic!("{e}"));
        let state = op.snapshot().unwrap_or_else(|e| panic!("{e}"));
        entries.push(StateEntry { op: 0, name: op.name().into(), worker: w, workers: before, state });
    }
    assert!(out.take().iter().all(|m| matches!(m, Message::Barrier(1))), "a barrier passes at once");
    drop(ops);
    let id = cut as u64 + 1;
    let store = CheckpointStore::new(dir, "q");
    let progress = Progress {
        checkpoint_id: id,
        positions: vec![PartitionOffset { topic: "logs".into(), partition: 0, next_offset: 1 }],
        watermark: None,
    };
    store.write(&progress, &entries).unwrap_or_else(|e| panic!("{e}"));
    let loaded = store.load(id).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("no checkpoint {id}"));
    let mut restored: Vec<Box<dyn Operator>> = (0..after)
        .map(|w| {
            let mut op = make();
            let (states, shard) = states_for(&loaded.states, 0, w, after);
            op.restore(states, shard).unwrap_or_else(|e| panic!("{e}"));
            op
        })
        .collect();
    emitted.extend(feed(&mut restored, &steps[cut..]));
    rows(&emitted)
}

fn check(name: &str, make: &dyn Fn() -> Box<dyn Operator>, schema: &SchemaRef) {
    check_with(name, make, schema, &[(1, 1, 1), (10, 1, 1), (31, 1, 2), (46, 2, 1), (60, 3, 2), (79, 1, 3)]);
}

/// As [`check`], stopping at each `(step, workers before, workers after)`.
fn check_with(name: &str, make: &dyn Fn() -> Box<dyn Operator>, schema: &SchemaRef, stops: &[(usize, usize, usize)]) {
    let dir = std::env::temp_dir().join(format!("eddy-restore-{name}-{}", std::process::id()));
    for seed in 0..3 {
        let steps = input(schema, seed);
        let want = rows(&feed(&mut [make()], &steps));
        assert!(want.len() > 5, "{name}: the query must produce rows ({})", want.len());
        for &(cut, before, after) in stops {
            let got = stopped_at(make, &steps, cut, before, after, &dir);
            assert_eq!(got, want, "{name}, seed {seed}: stopped after step {cut}, restored from {before} onto {after} workers");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tumbling_window_totals_are_the_same_after_a_restore() {
    let plan = plan(
        "CREATE TABLE t WITH (kafka_topic='t', value_format='json') AS SELECT account_id, WINDOWSTART AS ws, SUM(amount) AS total, \
         COUNT(*) AS n, AVG(amount) AS mean, COUNT(DISTINCT country) AS countries FROM logs WINDOW TUMBLING (SIZE 3 SECONDS) GROUP BY account_id EMIT FINAL;",
    );
    let schema = input_schema(&plan);
    let aggregate = plan.aggregate.clone().unwrap_or_else(|| panic!("no aggregate"));
    let make = || -> Box<dyn Operator> {
        Box::new(WindowAggregate::new(&aggregate, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}")))
    };
    check("tumbling", &make, &schema);
}

#[test]
fn hopping_and_session_windows_are_the_same_after_a_restore() {
    for (name, window) in [("hopping", "HOPPING (SIZE 4 SECONDS, ADVANCE BY 1 SECOND)"), ("session", "SESSION (2 SECONDS)")] {
        let plan = plan(&format!(
            "CREATE TABLE t WITH (kafka_topic='t', value_format='json') AS SELECT account_id, WINDOWSTART AS ws, WINDOWEND AS we, SUM(amount) AS total, \
             MAX(country) AS top, AVG(amount) AS mean FROM logs WINDOW {window} GROUP BY account_id EMIT FINAL;"
        ));
        let schema = input_schema(&plan);
        let aggregate = plan.aggregate.clone().unwrap_or_else(|| panic!("no aggregate"));
        let make = || -> Box<dyn Operator> {
            Box::new(WindowAggregate::new(&aggregate, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}")))
        };
        check(name, &make, &schema);
    }
}

#[test]
fn match_recognize_alerts_are_the_same_after_a_restore() {
    let plan = plan(
        "CREATE STREAM alerts (account_id INT, first_country VARCHAR, country VARCHAR, first_at BIGINT, at BIGINT, n BIGINT, k BIGINT) WITH (kafka_topic='alerts', value_format='json');\n\
         INSERT INTO alerts SELECT account_id, first_country, country, first_at, at, n, k FROM logs MATCH_RECOGNIZE (\
           PARTITION BY account_id ORDER BY at \
           MEASURES A.country AS first_country, B.country AS country, A.at AS first_at, B.at AS at, COUNT(N.at) AS n, MATCH_NUMBER() AS k \
           AFTER MATCH SKIP PAST LAST ROW \
           PATTERN (A N*? B) WITHIN INTERVAL '20' SECOND \
           DEFINE A AS A.event_type = 'login', N AS N.event_type <> 'log-out', \
                  B AS B.event_type = 'login' AND B.country <> A.country);",
    );
    let schema = input_schema(&plan);
    let mr = plan.match_recognize.clone().unwrap_or_else(|| panic!("no MATCH_RECOGNIZE"));
    let make = || -> Box<dyn Operator> {
        Box::new(MatchRecognize::new(&mr, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}")))
    };
    check("match_recognize", &make, &schema);
}

#[test]
fn unkeyed_state_is_the_same_after_a_restore() {
    // No PARTITION BY / GROUP BY keys: one worker holds the whole state.
    let stops = [(1, 1, 1), (17, 1, 1), (44, 1, 1), (70, 1, 1)];
    let rule = plan(
        "CREATE STREAM alerts (first_country VARCHAR, country VARCHAR, at BIGINT) WITH (kafka_topic='alerts', value_format='json');\n\
         INSERT INTO alerts SELECT first_country, country, at FROM logs MATCH_RECOGNIZE (ORDER BY at \
           MEASURES A.country AS first_country, B.country AS country, B.at AS at PATTERN (A B+ C) \
           DEFINE A AS A.event_type = 'login', B AS B.country = A.country, C AS C.event_type = 'purchase');",
    );
    let schema = input_schema(&rule);
    let mr = rule.match_recognize.clone().unwrap_or_else(|| panic!("no MATCH_RECOGNIZE"));
    let make = || -> Box<dyn Operator> {
        Box::new(MatchRecognize::new(&mr, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}")))
    };
    check_with("unkeyed_match_recognize", &make, &schema, &stops);
    let totals = plan("CREATE TABLE t (window_start TIMESTAMP(3), window_end TIMESTAMP(3), total BIGINT, n BIGINT, mean DOUBLE) WITH ('connector'='kafka', 'topic'='t', 'format'='json');\n\
         INSERT INTO t SELECT window_start, window_end, SUM(amount), COUNT(*), AVG(amount) \
         FROM TABLE(TUMBLE(TABLE logs, DESCRIPTOR(at), INTERVAL '2' SECONDS)) GROUP BY window_start, window_end;");
    let schema = input_schema(&totals);
    let aggregate = totals.aggregate.clone().unwrap_or_else(|| panic!("no aggregate"));
    let make = || -> Box<dyn Operator> {
        Box::new(WindowAggregate::new(&aggregate, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}")))
    };
    check_with("unkeyed_window", &make, &schema, &stops);
}

#[test]
fn a_state_of_another_layout_is_refused_with_a_hint() {
    let plan = plan("CREATE TABLE t WITH (kafka_topic='t', value_format='json') AS SELECT account_id, WINDOWSTART AS ws, COUNT(*) AS n FROM logs WINDOW TUMBLING (SIZE 3 SECONDS) GROUP BY account_id;");
    let schema = input_schema(&plan);
    let aggregate = plan.aggregate.clone().unwrap_or_else(|| panic!("no aggregate"));
    let mut op = WindowAggregate::new(&aggregate, &schema, Arc::new(QueryMetrics::default())).unwrap_or_else(|e| panic!("{e}"));
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = op.restore(vec![eddy_engine::operator::OperatorState { batches: vec![wrong] }], None).err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("checkpoint state: no column \"watermark\""));
}
