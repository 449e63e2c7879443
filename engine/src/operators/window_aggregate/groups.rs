//! The groups of one window: group keys interned to dense group indices by DataFusion's
//! [`GroupValues`] (the same specialised tables its hash aggregation uses: one primitive
//! or string column, several columns, or rows), and one DataFusion
//! [`GroupsAccumulator`] per aggregate, so a batch costs one vectorized `intern` and one
//! vectorized `update_batch` per aggregate.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::error::{EngineError, Result};

/// Per aggregate: its input arrays (arguments, then ORDER BY expressions) and its
/// FILTER mask, evaluated over one batch.
pub(super) type Inputs = [(Vec<ArrayRef>, Option<BooleanArray>)];

/// One aggregate function with the expressions that feed it.
pub(super) struct Aggregate {
    pub(super) function: Arc<AggregateFunctionExpr>,
    /// Arguments, then ORDER BY expressions (what DataFusion's accumulators expect).
    pub(super) inputs: Vec<Arc<dyn PhysicalExpr>>,
    pub(super) filter: Option<Arc<dyn PhysicalExpr>>,
}

impl Aggregate {
    /// A grouped accumulator: DataFusion's own where it has one, else its row
    /// `Accumulator` behind a `GroupsAccumulatorAdapter` (e.g. `COUNT(DISTINCT)`).
    pub(super) fn groups_accumulator(&self) -> Result<Box<dyn GroupsAccumulator>> {
        if self.function.groups_accumulator_supported() {
            return Ok(self.function.create_groups_accumulator()?);
        }
        let function = self.function.clone();
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || function.create_accumulator())))
    }

    /// A row accumulator (session windows, one per session).
    pub(super) fn accumulator(&self) -> Result<Box<dyn Accumulator>> {
        Ok(self.function.create_accumulator()?)
    }
}

/// The group keys of a window.
enum Keys {
    /// No GROUP BY keys: one group, once a row has arrived.
    Global { present: bool },
    /// GROUP BY keys, interned by DataFusion.
    Keyed(Box<dyn GroupValues>),
}

/// The groups of one window and their aggregate state.
pub(super) struct Groups {
    keys: Keys,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Per group: changed since the last emission of changes.
    changed: Vec<bool>,
    any_changed: bool,
}

impl Groups {
    /// Empty groups for keys of `key_schema` (`None`: no GROUP BY keys).
    ///
    /// Errors: DataFusion cannot group by the key types, or cannot create an accumulator.
    pub(super) fn new(key_schema: Option<&SchemaRef>, aggregates: &[Aggregate]) -> Result<Self> {
        let keys = match key_schema {
            Some(schema) => Keys::Keyed(new_group_values(schema.clone(), &GroupOrdering::None)?),
            None => Keys::Global { present: false },
        };
        let accumulators = aggregates.iter().map(Aggregate::groups_accumulator).collect::<Result<_>>()?;
        Ok(Groups { keys, accumulators, changed: Vec::new(), any_changed: false })
    }

    /// The number of groups.
    pub(super) fn len(&self) -> usize {
        match &self.keys {
            Keys::Global { present } => usize::from(*present),
            Keys::Keyed(values) => values.len(),
        }
    }

    /// Whether a row changed a group since the last emission of changes.
    pub(super) fn any_changed(&self) -> bool {
        self.any_changed
    }

    /// The group index of every row of `keys` (one array per key column; `None`: no
    /// keys, `rows` rows of the one group), new groups added unchanged.
    fn intern(&mut self, keys: Option<&[ArrayRef]>, rows: usize) -> Result<Vec<usize>> {
        let groups = match (&mut self.keys, keys) {
            (Keys::Keyed(values), Some(keys)) => {
                let mut groups = Vec::with_capacity(rows);
                values.intern(keys, &mut groups)?;
                groups
            }
            (Keys::Global { present }, _) => {
                *present |= rows > 0;
                vec![0; rows]
            }
            (Keys::Keyed(_), None) => return Err(EngineError::Internal("grouped window without key columns".into())),
        };
        self.changed.resize(self.len(), false);
        Ok(groups)
    }

    /// Adds rows to their groups: all rows of the batch (`rows` `None`), or the rows at
    /// the indices `rows`. `keys` and `inputs` are over the whole batch.
    ///
    /// Errors: an aggregate rejects its input.
    pub(super) fn update(
        &mut self,
        keys: Option<&[ArrayRef]>,
        rows: Option<&UInt32Array>,
        inputs: &Inputs,
        batch_rows: usize,
    ) -> Result<()> {
        let taken_keys: Option<Vec<ArrayRef>> = match (keys, rows) {
            (Some(k), Some(idx)) => Some(k.iter().map(|c| arrow::compute::take(c, idx, None)).collect::<Result<_, _>>()?),
            _ => None,
        };
        let n = rows.map_or(batch_rows, |r| r.len());
        let groups = self.intern(taken_keys.as_deref().or(keys), n)?;
        for &g in &groups {
            self.changed[g] = true;
        }
        self.any_changed = true;
        let total = self.len();
        for (acc, (values, filter)) in self.accumulators.iter_mut().zip(inputs) {
            match rows {
                None => acc.update_batch(values, &groups, filter.as_ref(), total)?,
                Some(idx) => {
                    let values = values.iter().map(|v| arrow::compute::take(v, idx, None)).collect::<Result<Vec<_>, _>>()?;
                    let filter = match filter {
                        Some(f) => Some(arrow::compute::take(f, idx, None)?.as_boolean().clone()),
                        None => None,
                    };
                    acc.update_batch(&values, &groups, filter.as_ref(), total)?;
                }
            }
        }
        Ok(())
    }

    /// The key columns of every group, in group order, keeping the groups: DataFusion
    /// emits and forgets them, so they are interned again (into the same indices).
    fn keys_kept(&mut self) -> Result<Vec<ArrayRef>> {
        let Keys::Keyed(values) = &mut self.keys else { return Ok(Vec::new()) };
        let total = values.len();
        let keys = values.emit(EmitTo::All)?;
        let mut groups = Vec::with_capacity(total);
        values.intern(&keys, &mut groups)?;
        if groups.iter().enumerate().any(|(i, &g)| i != g) {
            return Err(EngineError::Internal("group keys came back in another order".into()));
        }
        Ok(keys)
    }

    /// Each accumulator's state fields, in group order, keeping the state: DataFusion's
    /// `state` drains an accumulator, so the fields are merged back.
    fn states_kept(&mut self) -> Result<Vec<Vec<ArrayRef>>> {
        let total = self.len();
        let all: Vec<usize> = (0..total).collect();
        let mut states = Vec::with_capacity(self.accumulators.len());
        for acc in &mut self.accumulators {
            let fields = acc.state(EmitTo::All)?;
            acc.merge_batch(&fields, &all, total)?;
            states.push(fields);
        }
        Ok(states)
    }

    /// The current key columns and aggregate values of the groups that changed since
    /// the last call (all groups when `changed_only` is false), keeping the state;
    /// `None` when there are none. Clears the change marks.
    ///
    /// Errors: an accumulator cannot give its state or value.
    pub(super) fn current(&mut self, aggregates: &[Aggregate], changed_only: bool) -> Result<Option<(Vec<ArrayRef>, Vec<ArrayRef>)>> {
        let total = self.len();
        let picked: Vec<u32> = (0..total as u32).filter(|&g| !changed_only || self.changed[g as usize]).collect();
        self.changed.iter_mut().for_each(|c| *c = false);
        self.any_changed = false;
        if picked.is_empty() {
            return Ok(None);
        }
        let all: Vec<usize> = (0..total).collect();
        let pick = |a: ArrayRef| -> Result<ArrayRef> {
            if picked.len() == total {
                Ok(a)
            } else {
                Ok(arrow::compute::take(&a, &UInt32Array::from(picked.clone()), None)?)
            }
        };
        let mut values = Vec::with_capacity(aggregates.len());
        for (state, aggregate) in self.states_kept()?.into_iter().zip(aggregates) {
            let mut fresh = aggregate.groups_accumulator()?;
            fresh.merge_batch(&state, &all, total)?;
            values.push(pick(fresh.evaluate(EmitTo::All)?)?);
        }
        let keys = self.keys_kept()?.into_iter().map(pick).collect::<Result<Vec<_>>>()?;
        Ok(Some((keys, values)))
    }

    /// The key columns and final aggregate values of every group, consuming them.
    ///
    /// Errors: an accumulator cannot give its value.
    pub(super) fn finish(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let values = self.accumulators.iter_mut().map(|a| a.evaluate(EmitTo::All)).collect::<Result<Vec<_>, _>>()?;
        let keys = match &mut self.keys {
            Keys::Keyed(k) => k.emit(EmitTo::All)?,
            Keys::Global { .. } => Vec::new(),
        };
        Ok((keys, values))
    }

    /// The key columns of every group and, per aggregate, its state fields, leaving the
    /// groups empty and ready for the next batch (no new `GroupValues` and accumulators to
    /// create): a local pre-aggregation's output.
    ///
    /// Errors: an accumulator cannot give its state.
    pub(super) fn drain(&mut self) -> Result<(Vec<ArrayRef>, Vec<Vec<ArrayRef>>)> {
        let states = self.accumulators.iter_mut().map(|a| a.state(EmitTo::All)).collect::<Result<Vec<_>, _>>()?;
        let keys = match &mut self.keys {
            Keys::Keyed(k) => k.emit(EmitTo::All)?,
            Keys::Global { present } => {
                *present = false;
                Vec::new()
            }
        };
        self.changed.clear();
        self.any_changed = false;
        Ok((keys, states))
    }

    /// For a checkpoint: the key columns of every group and, per aggregate, its state
    /// fields, keeping everything.
    ///
    /// Errors: an accumulator cannot give its state.
    pub(super) fn snapshot(&mut self) -> Result<(Vec<ArrayRef>, Vec<Vec<ArrayRef>>)> {
        let states = self.states_kept()?;
        Ok((self.keys_kept()?, states))
    }

    /// Merges `rows` restored groups: their key columns (`None`: no keys) and, per
    /// aggregate, its state fields.
    ///
    /// Errors: the state does not fit the accumulators.
    pub(super) fn merge(&mut self, keys: Option<&[ArrayRef]>, rows: usize, states: &[Vec<ArrayRef>]) -> Result<()> {
        self.merge_marking(keys, rows, states, false)
    }

    /// Merges `rows` partial aggregates of another worker (as [`Groups::merge`]) and
    /// marks their groups changed, as rows adding to them would.
    ///
    /// Errors: the state does not fit the accumulators.
    pub(super) fn merge_partial(&mut self, keys: Option<&[ArrayRef]>, rows: usize, states: &[Vec<ArrayRef>]) -> Result<()> {
        self.merge_marking(keys, rows, states, true)
    }

    fn merge_marking(&mut self, keys: Option<&[ArrayRef]>, rows: usize, states: &[Vec<ArrayRef>], mark: bool) -> Result<()> {
        let groups = self.intern(keys, rows)?;
        if mark && rows > 0 {
            for &g in &groups {
                self.changed[g] = true;
            }
            self.any_changed = true;
        }
        let total = self.len();
        for (acc, fields) in self.accumulators.iter_mut().zip(states) {
            acc.merge_batch(fields, &groups, total)?;
        }
        Ok(())
    }

    /// Approximate bytes held: keys and accumulator state.
    pub(super) fn size(&self) -> usize {
        let keys = match &self.keys {
            Keys::Keyed(k) => k.size(),
            Keys::Global { .. } => 0,
        };
        keys + self.changed.capacity() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }
}
