//! Trees laid out for scoring many rows (the fast path of `TreeModel` and of forests).
//!
//! A batch's inputs are first turned into one row-major matrix of features
//! ([`Features::matrix`]): the numbers that numeric predicates compare, and the truth
//! values (1.0 / 0.0) of the other simple predicates (text comparisons, sets,
//! `isMissing`), each evaluated once per row for every tree that uses it. A tree's nodes
//! are stored breadth-first with each node's children next to each other
//! ([`FlatTree`]), and every predicate is a comparison of one feature with a constant,
//! so a row walks the tree over a few cache lines without looking at Arrow arrays.
//!
//! UNKNOWN (a missing or unparsable input) is NaN in the matrix. A row with any NaN
//! is left to the tree's general walk, which applies the document's
//! `missingValueStrategy`; so is any tree with a compound or surrogate predicate.
//! Both paths give the same leaf for a row (the conformance tests score scikit-learn's
//! fixtures, missing values included, through both).

use crate::error::Result;
use crate::predicate::{Column, Op, Predicate, Slots};
use crate::values::Env;

/// What one feature column holds.
#[derive(Debug, Clone, PartialEq)]
enum Feature {
    /// The number in a slot.
    Number(usize),
    /// The truth of a predicate over the slots.
    Truth(Predicate),
}

/// The features that a set of flat trees compare, over their fields ([`Features::slots`]).
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Field names, one per slot.
    pub slots: Slots,
    kinds: Vec<Feature>,
}

impl Features {
    /// Features per row.
    pub fn width(&self) -> usize {
        self.kinds.len().max(1)
    }

    fn add(&mut self, feature: Feature) -> u32 {
        match self.kinds.iter().position(|k| *k == feature) {
            Some(i) => i as u32,
            None => {
                self.kinds.push(feature);
                (self.kinds.len() - 1) as u32
            }
        }
    }

    /// The features of `env`'s rows, row-major (`rows x width`), and per row whether
    /// any of them is UNKNOWN.
    ///
    /// Errors: a field has no values.
    pub fn matrix(&self, env: &Env) -> Result<(Vec<f64>, Vec<bool>)> {
        let values = self.slots.names.iter().map(|n| env.get(n)).collect::<Result<Vec<_>>>()?;
        let columns: Vec<Column<'_>> = values.iter().map(|v| Column::of(v)).collect();
        // Without features one column of zeros, which TRUE and FALSE read.
        let (n, w) = (env.rows, self.width());
        let mut data = vec![0.0; n * w];
        for (j, kind) in self.kinds.iter().enumerate() {
            match kind {
                Feature::Number(slot) => match columns[*slot] {
                    Column::Num(v, None) => {
                        for (i, x) in v.iter().enumerate().take(n) {
                            data[i * w + j] = *x;
                        }
                    }
                    column => {
                        for i in 0..n {
                            data[i * w + j] = column.num(i).unwrap_or(f64::NAN);
                        }
                    }
                },
                Feature::Truth(p) => {
                    for i in 0..n {
                        data[i * w + j] = match p.eval(&columns, i) {
                            Some(true) => 1.0,
                            Some(false) => 0.0,
                            None => f64::NAN,
                        };
                    }
                }
            }
        }
        let unknown = data.chunks_exact(w).map(|row| row.iter().any(|x| x.is_nan())).collect();
        Ok((data, unknown))
    }
}

/// A predicate as an interval test of one feature: `lo <= x <= hi`. Every comparison
/// but `notEqual` of a number has this form (`x < v` is `x <= v'` with `v'` the next
/// float below `v`; a truth feature's `notEqual 1` is `equal 0`), so a step evaluates it
/// without a branch. TRUE is the whole line, FALSE the empty one.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatPredicate {
    lo: f64,
    hi: f64,
    feature: u32,
}

impl FlatPredicate {
    /// `None` for `notEqual` (left to the general walk).
    fn new(feature: u32, op: Op, v: f64) -> Option<FlatPredicate> {
        let (lo, hi) = match op {
            Op::LessOrEqual => (f64::NEG_INFINITY, v),
            Op::LessThan => (f64::NEG_INFINITY, v.next_down()),
            Op::GreaterOrEqual => (v, f64::INFINITY),
            Op::GreaterThan => (v.next_up(), f64::INFINITY),
            Op::Equal => (v, v),
            Op::NotEqual => return None,
        };
        Some(FlatPredicate { lo, hi, feature })
    }

    fn is_true(&self) -> bool {
        *self == TRUE
    }

    /// Whether it holds for `x`, its feature's value (not NaN).
    #[inline(always)]
    fn holds(&self, x: f64) -> bool {
        (x >= self.lo) & (x <= self.hi)
    }
}

/// One node of a [`FlatTree`]: a row at this node moves to `first` if `left` holds,
/// else to `first + 1`. A leaf moves to itself (`first` is the node and `left` is
/// TRUE), so every row can take the same number of steps without a branch.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// `left`'s interval and feature, inline (24 bytes a step).
    lo: f64,
    hi: f64,
    feature: u32,
    first: u32,
}

impl Step {
    fn new(left: FlatPredicate, first: u32) -> Step {
        Step { lo: left.lo, hi: left.hi, feature: left.feature, first }
    }
}

/// A walk that ends here has no prediction.
const NO_NODE: u32 = u32::MAX;

/// Where a child of a node leads: an arena node, or (the stand-in for "no child holds")
/// a stop with the arena node to return, or [`NO_NODE`].
#[derive(Debug, Clone, Copy)]
enum Target {
    Node(u32),
    Stop(u32),
}

/// A tree as a binary tree of [`Step`]s. A node with children `c1 .. ck` (the first
/// whose predicate holds wins) becomes `c1` or a node of its own for `c2 .. ck`, and so
/// on; when the last child is not TRUE, a final TRUE child stands for "no child holds"
/// (no prediction, or the node itself under `returnLastPrediction`).
#[derive(Debug, Clone)]
pub struct FlatTree {
    root: FlatPredicate,
    steps: Vec<Step>,
    /// Per step: the arena node a row that ends there gets, or [`NO_NODE`].
    node: Vec<u32>,
    /// Steps from the root to the deepest leaf.
    depth: usize,
}

/// Feature 0 always exists ([`Features::width`] is at least 1) and is not NaN where
/// the walk's result is used.
const TRUE: FlatPredicate = FlatPredicate { feature: 0, lo: f64::NEG_INFINITY, hi: f64::INFINITY };
const FALSE: FlatPredicate = FlatPredicate { feature: 0, lo: f64::INFINITY, hi: f64::NEG_INFINITY };

impl FlatTree {
    /// Lays out the tree of `count` nodes (node 0 the root) whose node `k` has
    /// `predicate(k)` over the slots named `names` and `children(k)`, adding its features
    /// to `features`. `None` when a predicate is compound or a surrogate (left to the
    /// general walk).
    pub fn build<'a>(
        count: usize,
        predicate: impl Fn(usize) -> &'a Predicate,
        children: impl Fn(usize) -> &'a [usize],
        names: &[String],
        return_last: bool,
        features: &mut Features,
    ) -> Option<FlatTree> {
        if count == 0 {
            return None;
        }
        let kids = |k: u32, features: &mut Features| -> Option<Vec<(FlatPredicate, Target)>> {
            children(k as usize).iter().map(|&c| Some((flatten(predicate(c), names, features)?, Target::Node(c as u32)))).collect()
        };
        let root = flatten(predicate(0), names, features)?;
        let mut flat = FlatTree { root, steps: vec![Step::new(TRUE, 0)], node: vec![0], depth: 0 };
        // (step, the arena node whose children these are, the children)
        let mut work = vec![(0usize, 0u32, kids(0, features)?, 0usize)];
        while let Some((at, owner, mut list, depth)) = work.pop() {
            flat.depth = flat.depth.max(depth);
            if list.is_empty() {
                // A leaf: it stays where it is.
                flat.steps[at] = Step::new(TRUE, at as u32);
                continue;
            }
            if list.last().is_none_or(|(p, _)| !p.is_true()) {
                list.push((TRUE, Target::Stop(if return_last { owner } else { NO_NODE })));
            }
            let first = flat.steps.len();
            flat.steps[at] = Step::new(list[0].0, first as u32);
            let rest = if list.len() == 2 { vec![list[1]] } else { Vec::new() };
            let tail = list.split_off(1);
            for (step, target) in [(first, Some(list[0].1)), (first + 1, rest.first().map(|r| r.1))] {
                flat.steps.push(Step::new(TRUE, step as u32));
                match target {
                    Some(Target::Node(n)) => {
                        flat.node.push(n);
                        work.push((step, n, kids(n, features)?, depth + 1));
                    }
                    Some(Target::Stop(n)) => {
                        flat.node.push(n);
                        work.push((step, owner, Vec::new(), depth + 1));
                    }
                    // c2 .. ck behind the TRUE edge: a node of their own.
                    None => {
                        flat.node.push(NO_NODE);
                        work.push((step, owner, tail.clone(), depth + 1));
                    }
                }
            }
        }
        Some(flat)
    }

    /// The arena node each row of `matrix` (rows of `width` features, none NaN where
    /// the result is used) ends at, handed to `f` in row order (`None`: no prediction).
    /// Every row takes the tree's depth in steps, level by
    /// level over all rows (a leaf steps to itself): the steps of one level are
    /// independent of each other, so the processor overlaps them, and no step branches.
    #[inline]
    pub fn walk_each(&self, matrix: &[f64], width: usize, rows: usize, mut f: impl FnMut(usize, Option<usize>)) {
        let mut at = vec![0u32; rows];
        self.final_steps(matrix, width, &mut at);
        for (i, a) in at.iter().enumerate() {
            let node = self.node[*a as usize];
            f(i, (node != NO_NODE && self.root_holds(&matrix[i * width..])).then_some(node as usize));
        }
    }

    /// The step each row of `matrix` ends at, into `at` (one per row, all 0 on entry):
    /// the tree's depth in steps, level by level over all rows (see [`FlatTree::walk_each`]).
    /// The root's own predicate is not applied ([`FlatTree::root_holds`]).
    #[inline]
    pub fn final_steps(&self, matrix: &[f64], width: usize, at: &mut [u32]) {
        for _ in 0..self.depth {
            for (a, row) in at.iter_mut().zip(matrix.chunks_exact(width)) {
                let step = self.steps[*a as usize];
                let x = row[step.feature as usize];
                *a = step.first + u32::from(!((x >= step.lo) & (x <= step.hi)));
            }
        }
    }

    /// Whether the root's predicate holds for `row` (no NaN).
    #[inline]
    pub fn root_holds(&self, row: &[f64]) -> bool {
        self.root.holds(row[self.root.feature as usize])
    }

    /// Whether the root's predicate is TRUE (as sklearn2pmml writes it).
    pub fn root_is_true(&self) -> bool {
        self.root.is_true()
    }

    /// The arena node of each step (the node a row that ends there gets), `None` for
    /// no prediction.
    pub fn step_nodes(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.node.iter().map(|n| (*n != NO_NODE).then_some(*n as usize))
    }
}

/// `predicate` (over the slots named `names`) as a comparison of one feature.
fn flatten(predicate: &Predicate, names: &[String], features: &mut Features) -> Option<FlatPredicate> {
    Some(match predicate {
        Predicate::True => TRUE,
        Predicate::False => FALSE,
        Predicate::Num { slot, op, value } => {
            let slot = features.slots.slot(names.get(*slot)?);
            FlatPredicate::new(features.add(Feature::Number(slot)), *op, *value)?
        }
        Predicate::Str { .. } | Predicate::InSet { .. } | Predicate::IsMissing { .. } => {
            let slots = &mut features.slots;
            let shared = predicate.with_slots(&mut |s| names.get(s).map(|n| slots.slot(n)))?;
            FlatPredicate::new(features.add(Feature::Truth(shared)), Op::Equal, 1.0)?
        }
        Predicate::And(_) | Predicate::Or(_) | Predicate::Xor(_) | Predicate::Surrogate(_) => return None,
    })
}
