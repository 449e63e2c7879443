//! Flink's `PROCTIME()`: the wall-clock time at which a row is processed, for a
//! processing-time column (`proc_time AS PROCTIME()`) that a lookup join reads with
//! `FOR SYSTEM_TIME AS OF o.proc_time`.

use std::sync::Arc;

use arrow::array::TimestampMillisecondArray;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// `PROCTIME()`: `TIMESTAMP(3)`, milliseconds since the epoch (UTC) when the batch is
/// evaluated; every row of one micro-batch gets the same time. Flink types it
/// `TIMESTAMP_LTZ(3)`; Eddy's timestamps are UTC, so the values agree.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProcTime {
    signature: Signature,
}

impl ProcTime {
    /// The function's name as SQL writes it (lower case, as registered).
    pub const NAME: &'static str = "proctime";

    /// The function, ready to register as a [`ScalarUDF`].
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(ProcTime { signature: Signature::nullary(Volatility::Volatile) })
    }
}

impl ScalarUDFImpl for ProcTime {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        Ok(ColumnarValue::Array(Arc::new(TimestampMillisecondArray::from(vec![now; args.number_rows]))))
    }
}
