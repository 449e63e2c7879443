//! Streaming SQL functions DataFusion lacks, registered in Eddy's session.
//!
//! - `TO_TIMESTAMP_LTZ(epoch, precision)` (Flink): epoch seconds (`precision` 0) or
//!   milliseconds (`precision` 3) to `TIMESTAMP(3)`; a VARCHAR argument is read as
//!   ISO-8601 (`2026-01-01T10:00:00Z`, offsets allowed). NULL in, NULL out; a string
//!   that does not parse gives NULL, which the watermark step reports as a malformed
//!   record when the column is the event time.
//! - Flink's `TO_TIMESTAMP(string [, pattern])` with Java patterns, NULL for a value it
//!   cannot read ([`ToTimestamp`]; DataFusion's reads chrono patterns and fails the query).
//! - `SQRT`, `LN`, `LOG10`, `EXP`, `CBRT` with Java's semantics ([`JavaMath`]).
//! - `SUBSTRING`/`SUBSTR`, `INSTR` and ksqlDB's `INITCAP` with ksqlDB's indexing ([`strings`]).
//! - Flink's `PROCTIME()`, the processing time of a row ([`ProcTime`]).
//! - ksqlDB's `LATEST_BY_OFFSET` / `EARLIEST_BY_OFFSET` with a count of values ([`ByOffsetN`]).

mod by_offset;
mod java_math;
mod proctime;
pub mod strings;
mod to_timestamp;

pub use by_offset::ByOffsetN;
pub use java_math::JavaMath;
pub use proctime::ProcTime;
pub use to_timestamp::ToTimestamp;

/// Plans a ksqlDB statement's (`CREATE ... AS SELECT`, a push query) functions that share
/// a name with a Flink function of other semantics under the ksqlDB version's name:
/// `INITCAP` becomes [`strings::KsqlInitcap`].
pub fn use_ksql_functions(query: &mut sqlparser::ast::Query) {
    use sqlparser::ast::{Expr, Ident, ObjectName, VisitMut};
    let _ = query.visit(&mut super::window::RewriteExprs(|e: &mut Expr| {
        if let Expr::Function(f) = e {
            if f.name.to_string().eq_ignore_ascii_case("initcap") {
                f.name = ObjectName::from(vec![Ident::new(strings::KsqlInitcap::NAME)]);
            }
        }
    }));
}

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// Flink's `TO_TIMESTAMP_LTZ`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestampLtz {
    signature: Signature,
}

impl ToTimestampLtz {
    /// The function, ready to register as a [`ScalarUDF`].
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(ToTimestampLtz { signature: Signature::variadic_any(Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for ToTimestampLtz {
    fn name(&self) -> &str {
        "to_timestamp_ltz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [t] | [t, _]
                if t.is_integer()
                    || t.is_floating()
                    || matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null) =>
            {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            [t, ..] => plan_err!("TO_TIMESTAMP_LTZ takes epoch seconds or milliseconds (a number) or an ISO-8601 string, not {t}"),
            [] => plan_err!("TO_TIMESTAMP_LTZ needs an argument: TO_TIMESTAMP_LTZ(event_ts, 0)"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let precision = match args.args.get(1) {
            None => 3,
            Some(ColumnarValue::Scalar(s)) => match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(p)) => p,
                _ => return exec_err!("TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds)"),
            },
            Some(ColumnarValue::Array(_)) => return exec_err!("TO_TIMESTAMP_LTZ precision must be a constant: 0 or 3"),
        };
        let factor = match precision {
            0 => 1000,
            3 => 1,
            p => return exec_err!("TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds), found {p}"),
        };
        let Some(value) = args.args.first() else { return exec_err!("TO_TIMESTAMP_LTZ needs an argument") };
        let array = value.to_array(args.number_rows)?;
        let out: ArrayRef = match array.data_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                let options = arrow::compute::CastOptions { safe: true, ..Default::default() };
                arrow::compute::cast_with_options(&array, &DataType::Timestamp(TimeUnit::Millisecond, None), &options)?
            }
            _ => {
                let options = arrow::compute::CastOptions { safe: true, ..Default::default() };
                let ints = arrow::compute::cast_with_options(&array, &DataType::Int64, &options)?;
                let ints = ints.as_primitive::<Int64Type>();
                let millis: TimestampMillisecondArray = ints.iter().map(|v| v.and_then(|v| v.checked_mul(factor))).collect();
                Arc::new(millis)
            }
        };
        debug_assert_eq!(out.len(), args.number_rows);
        Ok(ColumnarValue::Array(out))
    }
}
