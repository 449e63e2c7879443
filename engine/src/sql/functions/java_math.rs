//! Math with Java's semantics (`java.lang.Math`), as ksqlDB and Flink compute it.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// A math function with Java's semantics (`java.lang.Math`), which ksqlDB and Flink
/// follow: `SQRT(-1)` is NaN and `LN(0)` is -Infinity, where DataFusion 55 fails the row
/// (`cannot take square root of a negative number`). One DOUBLE argument (numbers are
/// cast to DOUBLE), DOUBLE result, NULL in, NULL out. Registered under DataFusion's own
/// names, replacing them.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JavaMath {
    name: &'static str,
    signature: Signature,
}

impl JavaMath {
    /// `SQRT`, `LN`, `LOG10`, `EXP`, `CBRT`: the functions whose DataFusion versions fail
    /// or differ on values Java maps to NaN or an infinity.
    pub fn udfs() -> Vec<ScalarUDF> {
        ["sqrt", "ln", "log10", "exp", "cbrt"]
            .into_iter()
            .map(|name| {
                ScalarUDF::from(JavaMath { name, signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable) })
            })
            .collect()
    }

    fn apply(&self, x: f64) -> f64 {
        match self.name {
            "sqrt" => x.sqrt(),
            "ln" => x.ln(),
            "log10" => x.log10(),
            "exp" => x.exp(),
            _ => x.cbrt(),
        }
    }
}

impl ScalarUDFImpl for JavaMath {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(value) = args.args.first() else { return exec_err!("{} needs an argument", self.name.to_uppercase()) };
        let array = value.to_array(args.number_rows)?;
        let doubles = arrow::compute::cast(&array, &DataType::Float64)?;
        let out: arrow::array::Float64Array =
            doubles.as_primitive::<arrow::datatypes::Float64Type>().iter().map(|v| v.map(|x| self.apply(x))).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, ArrayRef, Float64Array, Int32Array};
    use arrow::datatypes::Field;

    use super::*;

    fn run(name: &str, input: ArrayRef) -> Float64Array {
        let udf = JavaMath::udfs().into_iter().find(|u| u.name() == name).unwrap_or_else(|| panic!("no {name}"));
        let rows = input.len();
        let args = ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(input)],
            arg_fields: vec![Arc::new(Field::new("x", DataType::Float64, true))],
            number_rows: rows,
            return_field: Arc::new(Field::new(name, DataType::Float64, true)),
            config_options: Arc::default(),
        };
        match udf.invoke_with_args(args) {
            Ok(ColumnarValue::Array(a)) => a.as_primitive::<arrow::datatypes::Float64Type>().clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    /// Java's `Math`: SQRT of a negative is NaN and LN(0) is -Infinity (ksqlDB, Flink).
    #[test]
    fn nan_and_infinities_instead_of_errors() {
        let sqrt = run("sqrt", Arc::new(Float64Array::from(vec![Some(-1.0), Some(4.0), None])));
        assert!(sqrt.value(0).is_nan());
        assert_eq!((sqrt.value(1), sqrt.is_null(2)), (2.0, true));
        let ln = run("ln", Arc::new(Int32Array::from(vec![0, 1])));
        assert_eq!((ln.value(0), ln.value(1)), (f64::NEG_INFINITY, 0.0));
    }
}
