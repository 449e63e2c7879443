//! The window operator on its own: barriers pass at once (the open windows go into the
//! checkpoint instead), late rows are counted and sent to the side output with their
//! bytes, state is freed when windows close.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::operator::{Collector, Message, Operator};
use eddy_engine::operators::{LocalAggregate, MetaColumns, WindowAggregate};
use eddy_engine::sql::planner::QueryPlan;

use crate::common::{operator_input, plan_query};

fn plan() -> Arc<QueryPlan> {
    let sql = "CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE) WITH (kafka_topic='tx', value_format='json', \
               'late-rows.topic'='late');\n\
               CREATE TABLE out WITH (kafka_topic='out', value_format='json') AS \
               SELECT user_id, WINDOWSTART AS ws, SUM(amount) AS total FROM tx \
               WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id EMIT FINAL;";
    plan_query(sql)
}

/// The operator's input schema: the relation, the record meta columns, `__rowtime`.
fn input_schema(plan: &QueryPlan) -> SchemaRef {
    operator_input(plan, MetaColumns::Record)
}

/// Rows `(user, amount, event time ms, offset)`.
fn batch(schema: &SchemaRef, rows: &[(&str, f64, i64, i64)]) -> RecordBatch {
    let n = rows.len();
    let values: Vec<String> = rows.iter().map(|r| format!("{{\"user_id\":\"{}\"}}", r.0)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
        Arc::new(TimestampMillisecondArray::from(vec![None; n])),
        Arc::new(BinaryArray::from_iter_values(rows.iter().map(|r| r.0.as_bytes()))),
        Arc::new(BinaryArray::from_iter_values(values.iter().map(|v| v.as_bytes()))),
        Arc::new(StringArray::from(vec!["tx"; n])),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("{e}"))
}

fn describe(messages: Vec<Message>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| match m {
            Message::Batch(b) => {
                let users = b.column(0).as_any().downcast_ref::<StringArray>().map(|a| a.iter().flatten().collect::<Vec<_>>().join(","));
                let totals = b
                    .column(3)
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .map(|a| a.values().iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","));
                format!("rows {} {}", users.unwrap_or_default(), totals.unwrap_or_default())
            }
            Message::Watermark(w) => format!("watermark {w}"),
            Message::Barrier(id) => format!("barrier {id}"),
            Message::LateRows(b) => format!("late {}", b.num_rows()),
            Message::DeadLetters(b) => format!("dead letters {}", b.num_rows()),
            Message::Idle => "idle".into(),
            Message::End => "end".into(),
        })
        .collect()
}

#[test]
fn barriers_pass_open_windows_and_late_rows_keep_their_bytes() -> eddy_engine::Result<()> {
    let plan = plan();
    let schema = input_schema(&plan);
    let metrics = Arc::new(QueryMetrics::default());
    let aggregate = plan.aggregate.as_ref().unwrap_or_else(|| panic!("no aggregate"));
    let mut op = WindowAggregate::new(aggregate, &schema, metrics.clone())?;
    let mut out = Collector::default();

    // Window [0, 10 s): a, b. Barrier 1 arrives while it is open: it passes at once.
    op.on_batch(batch(&schema, &[("a", 1.0, 1000, 0), ("b", 2.0, 2000, 1)]), &mut out)?;
    op.on_barrier(1, &mut out)?;
    assert_eq!(describe(out.take()), ["barrier 1"]);
    op.on_batch(batch(&schema, &[("a", 4.0, 12_000, 2), ("a", 8.0, 3000, 3)]), &mut out)?;
    assert_eq!(metrics.snapshot().open_windows, 3, "a and b in [0,10), a in [10,20)");
    // The open windows are in the snapshot: one row per window and key.
    let state = op.snapshot()?;
    assert_eq!(state.batches.len(), 2);
    assert_eq!(state.batches[1].num_rows(), 3);
    // The watermark closes [0, 10).
    op.on_watermark(9999, &mut out)?;
    assert_eq!(describe(out.take()), ["rows a,b 9,2", "watermark 9999"]);
    // A row for the closed window is late: counted and sent on with its bytes.
    op.on_batch(batch(&schema, &[("b", 16.0, 5000, 4)]), &mut out)?;
    let messages = out.take();
    let late = messages.iter().find_map(|m| match m {
        Message::LateRows(b) => Some(b.clone()),
        _ => None,
    });
    let value = late.as_ref().and_then(|b| b.column(1).as_any().downcast_ref::<BinaryArray>().map(|v| v.value(0).to_vec()));
    assert_eq!(value.as_deref(), Some(br#"{"user_id":"b"}"#.as_slice()));
    assert_eq!(metrics.snapshot().late_rows, 1);
    op.on_watermark(19_999, &mut out)?;
    assert_eq!(describe(out.take()), ["rows a 4", "watermark 19999"]);
    assert_eq!(metrics.snapshot().open_windows, 0, "state is freed");
    assert_eq!(op.snapshot()?.batches.len(), 1, "only the watermark is left");
    Ok(())
}

/// Rows `(user, amount, event time ms)` of `schema`: the relation's columns, the position
/// meta columns (zeros, NULL timestamps) and `__rowtime`.
fn rows_batch(schema: &SchemaRef, rows: &[(&str, f64, i64)]) -> RecordBatch {
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match (f.name().as_str(), f.data_type()) {
                ("user_id", _) => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                ("amount", _) => Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
                ("__rowtime", _) => Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.2))),
                (_, DataType::Int32) => Arc::new(Int32Array::from(vec![0; n])),
                (_, DataType::Int64) => Arc::new(Int64Array::from_iter_values(0..n as i64)),
                (_, t) => arrow::array::new_null_array(t, n),
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).unwrap_or_else(|e| panic!("{e}"))
}

/// Each message as text; a batch's rows sorted (a batch's row order is not part of the
/// answer).
fn as_text(messages: Vec<Message>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| match m {
            Message::Batch(b) => {
                let text = arrow::util::pretty::pretty_format_batches(&[b]).map(|t| t.to_string()).unwrap_or_else(|e| e.to_string());
                let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with("| ")).collect();
                lines[1..].sort_unstable();
                lines.join("\n")
            }
            other => describe(vec![other]).join(""),
        })
        .collect()
}

/// A batch of rows `(user, amount, event time ms)`, or a watermark (ms).
enum Step {
    Rows(Vec<(&'static str, f64, i64)>),
    Watermark(i64),
}

/// Feeds the same batches and watermarks to the aggregation of `sql` reading rows, and to
/// a [`LocalAggregate`] in front of the aggregation merging its partials; returns both
/// outputs (as text) and late-row counts.
fn rows_and_partials(sql: &str) -> eddy_engine::Result<[(Vec<String>, u64); 2]> {
    let plan = plan_query(sql);
    let schema = operator_input(&plan, MetaColumns::Position);
    let aggregate = plan.aggregate.as_ref().unwrap_or_else(|| panic!("no aggregate"));
    assert!(LocalAggregate::applies(aggregate, false), "{sql}");
    // Each row three times, so a batch has few groups per row and is pre-aggregated;
    // the last batch has a group per row and goes on as rows.
    let thrice = |rows: &[(&'static str, f64, i64)]| -> Vec<(&'static str, f64, i64)> { rows.iter().flat_map(|r| [*r, *r, *r]).collect() };
    let steps: Vec<Step> = vec![
        Step::Rows(thrice(&[("a", 1.0, 1000), ("b", 2.0, 2000), ("a", 4.0, 12_000)])),
        Step::Watermark(5000),
        Step::Rows(thrice(&[("b", 8.0, 3000), ("c", 16.0, 15_000), ("a", 32.0, 25_000), ("a", 0.5, 3500)])),
        Step::Watermark(9999),
        Step::Rows(thrice(&[("b", 64.0, 4000), ("c", 128.0, 18_000), ("b", 1024.0, 7000)])),
        Step::Watermark(19_999),
        Step::Rows(thrice(&[("a", 256.0, 9000), ("d", 512.0, 31_000), ("d", 2048.0, 16_000)])),
        Step::Watermark(29_999),
        Step::Rows(vec![("e", 1.0, 35_000), ("f", 3.0, 36_000), ("g", 5.0, 8000)]),
        Step::Watermark(40_000),
    ];
    let mut answers = Vec::new();
    let mut kinds = (0, 0);
    for local in [false, true] {
        let metrics = Arc::new(QueryMetrics::default());
        let mut back = WindowAggregate::new(aggregate, &schema, metrics.clone())?;
        let mut front = LocalAggregate::new(aggregate, &schema)?;
        if local {
            back = back.merging_partials();
        }
        let mut out = Collector::default();
        let mut seen = Vec::new();
        for step in &steps {
            match step {
                Step::Rows(rows) if local => {
                    let mut partials = Collector::default();
                    front.on_batch(rows_batch(&schema, rows), &mut partials)?;
                    for b in partials.take_batches() {
                        match LocalAggregate::is_partial(&b) {
                            true => kinds.0 += 1,
                            false => kinds.1 += 1,
                        }
                        back.on_batch(b, &mut out)?;
                    }
                }
                Step::Rows(rows) => back.on_batch(rows_batch(&schema, rows), &mut out)?,
                Step::Watermark(w) => back.on_watermark(*w, &mut out)?,
            }
            seen.extend(as_text(out.take()));
        }
        answers.push((seen, metrics.snapshot().late_rows));
    }
    assert_eq!(kinds, (4, 1), "batches of partial states and of rows: {sql}");
    let [a, b]: [(Vec<String>, u64); 2] = answers.try_into().unwrap_or_else(|_| panic!("two answers"));
    Ok([a, b])
}

#[test]
fn local_pre_aggregation_gives_the_rows_and_late_counts_of_the_rows() -> eddy_engine::Result<()> {
    let flink = |window: &str, keys: &str, extra: &str| {
        format!(
            "CREATE TABLE tx (user_id VARCHAR, amount DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) \
             WITH ('connector'='kafka', 'topic'='tx', 'format'='json'{extra});\n\
             CREATE TABLE out (k VARCHAR, ws TIMESTAMP(3), total DOUBLE, n BIGINT, mx DOUBLE, av DOUBLE) \
             WITH ('connector'='blackhole');\n\
             INSERT INTO out SELECT {keys}, window_start, SUM(amount), COUNT(*), MAX(amount), AVG(amount) \
             FROM TABLE({window}) GROUP BY {keys}, window_start, window_end;"
        )
    };
    let cases = [
        // (query, late rows). Tumbling: 4 s and 7 s once [0,10) closed at 9999 (3.5 s came
        // before), 9 s and 16 s once [10,20) closed at 19999, each three times; 8 s.
        (flink("TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '10' SECONDS)", "user_id", ""), 13),
        // Hopping: 4 s (its last window [0,10) closed) and 9 s ([5,15) closed), three
        // times each, and 8 s; 7 s and 16 s are in open windows too.
        (flink("HOP(TABLE tx, DESCRIPTOR(ts), INTERVAL '5' SECONDS, INTERVAL '10' SECONDS)", "user_id", ""), 7),
        // A window stays 12 s after it fired: [0,10) closes at 21999, so only 8 s is late.
        (flink("TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '10' SECONDS)", "user_id", ", 'allowed-lateness'='12 s'"), 1),
        // One group per window.
        (flink("TUMBLE(TABLE tx, DESCRIPTOR(ts), INTERVAL '10' SECONDS)", "'all'", ""), 13),
        (
            "CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE) WITH (kafka_topic='tx', value_format='json');\n\
             CREATE TABLE out WITH (kafka_topic='out', value_format='json') AS SELECT user_id, SUM(amount) AS total, \
             COUNT(*) AS n FROM tx WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id EMIT CHANGES;"
                .to_string(),
            13,
        ),
        (
            "CREATE STREAM tx (user_id VARCHAR KEY, amount DOUBLE) WITH (kafka_topic='tx', value_format='json');\n\
             CREATE TABLE out WITH (kafka_topic='out', value_format='json') AS SELECT user_id, SUM(amount) AS total, \
             COUNT(*) AS n FROM tx GROUP BY user_id EMIT CHANGES;"
                .to_string(),
            0,
        ),
    ];
    for (sql, late) in &cases {
        let [rows, partials] = rows_and_partials(sql)?;
        assert_eq!(rows.1, *late, "late rows read as rows: {sql}");
        assert_eq!(partials, rows, "{sql}");
        assert!(rows.0.iter().any(|m| m.contains("| ")), "some rows came out: {sql}");
    }
    Ok(())
}
