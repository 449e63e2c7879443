//! ksqlDB's `LATEST_BY_OFFSET(col, n [, ignoreNulls])` and
//! `EARLIEST_BY_OFFSET(col, n [, ignoreNulls])`: the last (first) `n` values of `col` in
//! arrival order, as an ARRAY ordered earliest to latest, NULLs left out unless
//! `ignoreNulls` is `false` (ksqlDB's default is `true`). State is at most `n` values per
//! group, whatever the group's size. The one-value forms are DataFusion's `last_value` /
//! `first_value` (planned in `window.rs`).
//!
//! Planned as `ksql_latest_by_offset_n(col, n, ignore_nulls)` and
//! `ksql_earliest_by_offset_n(...)`; `n` and `ignore_nulls` are literals.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

/// Which end of the arrival order is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum End {
    Latest,
    Earliest,
}

/// The aggregate function (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ByOffsetN {
    end: End,
    signature: Signature,
}

impl ByOffsetN {
    /// The name `LATEST_BY_OFFSET(col, n, ...)` is planned under.
    pub const LATEST: &'static str = "ksql_latest_by_offset_n";
    /// The name `EARLIEST_BY_OFFSET(col, n, ...)` is planned under.
    pub const EARLIEST: &'static str = "ksql_earliest_by_offset_n";

    /// Both functions, ready to register.
    pub fn udafs() -> Vec<AggregateUDF> {
        [End::Latest, End::Earliest]
            .into_iter()
            .map(|end| AggregateUDF::from(ByOffsetN { end, signature: Signature::any(3, Volatility::Immutable) }))
            .collect()
    }
}

fn list_of(item: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item.clone(), true)))
}

impl AggregateUDFImpl for ByOffsetN {
    fn name(&self) -> &str {
        match self.end {
            End::Latest => Self::LATEST,
            End::Earliest => Self::EARLIEST,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        match arg_types {
            [value, n, flag] if n.is_integer() && matches!(flag, DataType::Boolean) => Ok(list_of(value)),
            _ => plan_err!("write {}(column, n [, ignoreNulls]) with n a whole number", self.display()),
        }
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let literal = |i: usize| acc_args.exprs.get(i).and_then(|e| e.downcast_ref::<Literal>()).map(|l| l.value().clone());
        let n = match literal(1).map(|v| v.cast_to(&DataType::Int64)) {
            Some(Ok(ScalarValue::Int64(Some(n)))) if n >= 1 => n as usize,
            _ => return exec_err!("{}: the number of values must be a literal of at least 1", self.display()),
        };
        let ignore_nulls = !matches!(literal(2), Some(ScalarValue::Boolean(Some(false))));
        let item = acc_args.expr_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        Ok(Box::new(KeptValues { end: self.end, n, ignore_nulls, item, values: VecDeque::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let item = args.input_fields.first().map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
        Ok(vec![Arc::new(Field::new(format!("{}_values", args.name), list_of(&item), true))])
    }
}

impl ByOffsetN {
    fn display(&self) -> &'static str {
        match self.end {
            End::Latest => "LATEST_BY_OFFSET",
            End::Earliest => "EARLIEST_BY_OFFSET",
        }
    }
}

/// At most `n` values, earliest first.
#[derive(Debug)]
struct KeptValues {
    end: End,
    n: usize,
    ignore_nulls: bool,
    item: DataType,
    values: VecDeque<ScalarValue>,
}

impl KeptValues {
    fn push(&mut self, v: ScalarValue) {
        if self.ignore_nulls && v.is_null() {
            return;
        }
        match self.end {
            End::Latest => {
                self.values.push_back(v);
                if self.values.len() > self.n {
                    self.values.pop_front();
                }
            }
            End::Earliest => {
                if self.values.len() < self.n {
                    self.values.push_back(v);
                }
            }
        }
    }

    fn push_array(&mut self, array: &ArrayRef) -> DfResult<()> {
        for row in 0..array.len() {
            // The earliest values are complete once there are n.
            if self.end == End::Earliest && self.values.len() >= self.n {
                break;
            }
            self.push(ScalarValue::try_from_array(array, row)?);
        }
        Ok(())
    }
}

impl Accumulator for KeptValues {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        match values.first() {
            Some(column) => self.push_array(column),
            None => Ok(()),
        }
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let values: Vec<ScalarValue> = self.values.iter().cloned().collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.item)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(lists) = states.first() else { return Ok(()) };
        let lists = lists.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                // Kept values were already filtered; merged in the order given.
                let ignore = std::mem::replace(&mut self.ignore_nulls, false);
                let result = self.push_array(&lists.value(row));
                self.ignore_nulls = ignore;
                result?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;

    fn kept(end: End, n: usize, ignore_nulls: bool, input: Vec<Option<i32>>) -> Vec<Option<i32>> {
        let mut acc = KeptValues { end, n, ignore_nulls, item: DataType::Int32, values: VecDeque::new() };
        let (first, second) = input.split_at(input.len() / 2);
        for part in [first, second] {
            let array: ArrayRef = Arc::new(Int32Array::from(part.to_vec()));
            acc.update_batch(&[array]).unwrap_or_else(|e| panic!("{e}"));
        }
        match acc.evaluate() {
            Ok(ScalarValue::List(list)) => list.value(0).as_primitive::<arrow::datatypes::Int32Type>().iter().collect(),
            other => panic!("{other:?}"),
        }
    }

    /// ksqlDB's LatestByOffset / EarliestByOffset with a count: earliest to latest.
    #[test]
    fn keeps_the_last_or_first_n_in_arrival_order() {
        let input = vec![Some(1), None, Some(3), Some(4), None];
        assert_eq!(kept(End::Latest, 2, true, input.clone()), vec![Some(3), Some(4)]);
        assert_eq!(kept(End::Latest, 2, false, input.clone()), vec![Some(4), None]);
        assert_eq!(kept(End::Earliest, 2, true, input.clone()), vec![Some(1), Some(3)]);
        assert_eq!(kept(End::Earliest, 2, false, input.clone()), vec![Some(1), None]);
        assert_eq!(kept(End::Latest, 10, true, input), vec![Some(1), Some(3), Some(4)]);
    }
}
