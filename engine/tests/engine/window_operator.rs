//! The window operator on its own: barriers pass at once (the open windows go into the
//! checkpoint instead), late rows are counted and sent to the side output with their
//! bytes, state is freed when windows close.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::operator::{Collector, Message, Operator};
use eddy_engine::operators::{MetaColumns, WindowAggregate};
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
