//! `MiningModel` with a `Segmentation`: ensembles (sklearn2pmml's RandomForest: the
//! average of the trees' probabilities or predictions; GradientBoosting: a model chain
//! of a sum of trees and a logistic link). Each segment's model is evaluated over the
//! whole batch; a segment whose predicate is not `True` counts only for the rows where
//! it holds (PMML 4.4, "Multiple Models").

use arrow::array::{Array, Float64Array};

use crate::error::Result;
use crate::expr::{same_value, Scope};
use crate::flat::{Features, FlatTree};
use crate::model::{Common, Dictionary, Function, Model, Prediction};
use crate::predicate::{child_predicate, Column, Predicate, Slots};
use crate::values::{Env, Values};
use crate::xml::Element;

/// A compiled `MiningModel`.
#[derive(Debug, Clone)]
pub struct MiningModel {
    pub common: Common,
    method: Method,
    segments: Vec<Segment>,
    slots: Slots,
    missing: MissingPrediction,
    /// A forest scored tree by tree over one shared feature matrix (see [`Forest`]).
    forest: Option<Forest>,
}

/// The fast path of a segmentation of plain trees (sklearn2pmml's RandomForest, and the
/// sum of GradientBoosting's trees): every segment's predicate is `True`, its model a
/// [`TreeModel`](crate::tree::TreeModel) that prepares nothing ([`Common::is_passthrough`]) and lays out flat,
/// and the method combines scores or probabilities. The batch's features are computed
/// once for all trees; each tree gives a leaf per row, whose score or probabilities are
/// added up in place, as [`MiningModel::combine_numbers`] and
/// [`MiningModel::combine_classes`] would from each tree's prediction.
#[derive(Debug, Clone)]
struct Forest {
    features: Features,
    /// Per segment: its tree laid out, and what each of its nodes gives ([`Payload`]).
    trees: Vec<(FlatTree, Payload)>,
}

/// How a forest's trees' answers add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// Scores (regression).
    Number,
    /// Votes for the most probable category.
    Vote,
    /// Probabilities per category.
    Probabilities,
}

/// A forest's running sums: per row `acc` (one number, or `k` per category), the weight
/// of the trees that gave a prediction, and whether one that gave none makes the row
/// missing (`missingPredictionTreatment="returnMissing"`).
struct Tally {
    acc: Vec<f64>,
    total: Vec<f64>,
    missing: Vec<bool>,
    k: usize,
    how: Combine,
    return_missing: bool,
}

impl Tally {
    /// Adds a tree's answer for row `i` with weight `w`: `values` (a score, or `k`
    /// probabilities; NaN first: no prediction) and the vote's `winner`.
    #[inline(always)]
    fn add(&mut self, i: usize, w: f64, values: &[f64], winner: u32) {
        if values[0].is_nan() {
            self.missing[i] |= self.return_missing;
            return;
        }
        self.total[i] += w;
        let k = self.k;
        match self.how {
            Combine::Number => self.acc[i] += w * values[0],
            Combine::Vote => self.acc[i * k + winner as usize] += w,
            Combine::Probabilities => {
                for (a, v) in self.acc[i * k..i * k + k].iter_mut().zip(values) {
                    *a += w * v;
                }
            }
        }
    }
}

/// What each node of a tree gives a row that ends there, by arena node: a regression's
/// score, or a classification's probabilities in the model's category order (`k` per
/// node) and the position of the most probable (a vote); NaN where it gives nothing.
/// The same by step of the flat tree in `by_step`.
#[derive(Debug, Clone, Default)]
struct Payload {
    values: Vec<f64>,
    winner: Vec<u32>,
    by_step: Vec<f64>,
    winner_by_step: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Segment {
    predicate: Predicate,
    weight: f64,
    model: Model,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Average,
    WeightedAverage,
    Sum,
    WeightedSum,
    Median,
    Max,
    MajorityVote,
    WeightedMajorityVote,
    ModelChain,
    SelectFirst,
}

/// `missingPredictionTreatment`: what a segment without a prediction does to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingPrediction {
    ReturnMissing,
    SkipSegment,
    Continue,
}

impl MiningModel {
    /// Compiles `element`; `scope` gains the outputs of a chain's segments.
    ///
    /// Errors: an unsupported method or segment model.
    pub fn compile(element: &Element, scope: &mut Scope, common: Common, dictionary: &Dictionary) -> Result<MiningModel> {
        let segmentation = element.first("Segmentation").ok_or_else(|| element.unsupported("a MiningModel without Segmentation"))?;
        let method = match segmentation.required("multipleModelMethod")? {
            "average" => Method::Average,
            "weightedAverage" => Method::WeightedAverage,
            "sum" => Method::Sum,
            "weightedSum" => Method::WeightedSum,
            "median" => Method::Median,
            "max" => Method::Max,
            "majorityVote" => Method::MajorityVote,
            "weightedMajorityVote" => Method::WeightedMajorityVote,
            "modelChain" => Method::ModelChain,
            "selectFirst" => Method::SelectFirst,
            other => return Err(segmentation.unsupported(format!("multipleModelMethod=\"{other}\""))),
        };
        let missing = match segmentation.attr("missingPredictionTreatment").unwrap_or("continue") {
            "returnMissing" => MissingPrediction::ReturnMissing,
            "skipSegment" => MissingPrediction::SkipSegment,
            "continue" => MissingPrediction::Continue,
            other => return Err(segmentation.unsupported(format!("missingPredictionTreatment=\"{other}\""))),
        };
        let inner = Dictionary { values: dictionary.values.clone(), categories: common.categories.clone(), nested: true };
        let mut slots = Slots::default();
        let mut segments = Vec::new();
        for s in segmentation.all("Segment") {
            let predicate = Predicate::compile(child_predicate(s)?, scope, &mut slots)?;
            let model_element = s
                .children
                .iter()
                .find(|c| crate::model::MODEL_ELEMENTS.contains(&c.name.as_str()))
                .ok_or_else(|| s.invalid("Segment holds no model"))?;
            // Each segment sees the fields around it; a chain's also see earlier outputs.
            let mut segment_scope = scope.clone();
            let model = Model::compile(model_element, &mut segment_scope, &inner)?;
            if method == Method::ModelChain {
                *scope = segment_scope;
            }
            segments.push(Segment { predicate, weight: s.number("weight", 1.0)?, model });
        }
        if segments.is_empty() {
            return Err(segmentation.invalid("Segmentation has no Segment"));
        }
        let mut model = MiningModel { common, method, segments, slots, missing, forest: None };
        model.forest = model.forest();
        Ok(model)
    }

    /// Whether the segments are scored as a [`Forest`] (tests).
    #[cfg(test)]
    pub(crate) fn has_forest(&self) -> bool {
        self.forest.is_some()
    }

    /// Forgets the forest and the segments' fast paths (tests).
    #[cfg(test)]
    pub(crate) fn drop_fast_paths(&mut self) {
        self.forest = None;
        for segment in &mut self.segments {
            segment.model.drop_fast_paths();
        }
    }

    /// The [`Forest`] of this segmentation, if it is one.
    fn forest(&self) -> Option<Forest> {
        let combines = match self.common.function {
            Function::Regression => matches!(self.method, Method::Average | Method::WeightedAverage | Method::Sum | Method::WeightedSum),
            Function::Classification => {
                matches!(self.method, Method::Average | Method::WeightedAverage | Method::MajorityVote | Method::WeightedMajorityVote)
            }
        };
        if !combines {
            return None;
        }
        let mut features = Features::default();
        let mut trees = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            let Model::Tree(tree) = &segment.model else { return None };
            if segment.predicate != Predicate::True || !tree.common.is_passthrough() || tree.common.function != self.common.function {
                return None;
            }
            let positions = tree
                .categories()
                .iter()
                .map(|c| {
                    self.common
                        .categories
                        .iter()
                        .position(|d| d == c)
                        .or_else(|| self.common.categories.iter().position(|d| same_value(c, d)))
                })
                .collect::<Option<Vec<usize>>>()?;
            let k = self.common.categories.len();
            let mut payload = Payload::default();
            for node in 0..tree.node_count() {
                if self.common.function == Function::Regression {
                    payload.values.push(tree.leaf_value(node).unwrap_or(f64::NAN));
                    continue;
                }
                let mut row = vec![f64::NAN; k];
                let mut winner = 0;
                if let Some(p) = tree.leaf_probabilities(node) {
                    // The most probable, the first of equals (as a tree's predicted class).
                    let mut best: Option<(usize, f64)> = None;
                    for (j, v) in p.iter().enumerate() {
                        row[positions[j]] = *v;
                        if best.is_none_or(|(_, b)| *v > b) {
                            best = Some((j, *v));
                        }
                    }
                    winner = best.map_or(0, |(j, _)| positions[j]);
                    // A category the tree does not know has probability 0.
                    row.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = 0.0);
                }
                payload.values.extend(row);
                payload.winner.push(winner as u32);
            }
            let flat = tree.flatten(&mut features)?;
            let width = if self.common.function == Function::Regression { 1 } else { k };
            for node in flat.step_nodes() {
                match node {
                    Some(n) => {
                        payload.by_step.extend_from_slice(&payload.values[n * width..n * width + width]);
                        payload.winner_by_step.push(payload.winner.get(n).copied().unwrap_or(0));
                    }
                    None => {
                        payload.by_step.extend(std::iter::repeat_n(f64::NAN, width));
                        payload.winner_by_step.push(0);
                    }
                }
            }
            trees.push((flat, payload));
        }
        Some(Forest { features, trees })
    }

    /// Scores the rows of `env` through the [`Forest`].
    fn evaluate_forest(&self, forest: &Forest, env: &Env) -> Result<Prediction> {
        let n = env.rows;
        let (matrix, unknown) = forest.features.matrix(env)?;
        let width = forest.features.width();
        let weighted = matches!(self.method, Method::WeightedAverage | Method::WeightedSum | Method::WeightedMajorityVote);
        let vote = matches!(self.method, Method::MajorityVote | Method::WeightedMajorityVote);
        let k = self.common.categories.len();
        let regression = self.common.function == Function::Regression;
        let mut tally = Tally {
            acc: vec![0.0; if regression { n } else { n * k }],
            total: vec![0.0; n],
            missing: vec![false; n],
            k,
            how: if regression {
                Combine::Number
            } else if vote {
                Combine::Vote
            } else {
                Combine::Probabilities
            },
            return_missing: self.missing == MissingPrediction::ReturnMissing,
        };
        let wk = if regression { 1 } else { k };
        let any_unknown = unknown.iter().any(|u| *u);
        let none = vec![f64::NAN; wk];
        let mut at = vec![0u32; n];
        for ((flat, payload), segment) in forest.trees.iter().zip(&self.segments) {
            let Model::Tree(tree) = &segment.model else { continue };
            let w = if weighted { segment.weight } else { 1.0 };
            at.iter_mut().for_each(|a| *a = 0);
            flat.final_steps(&matrix, width, &mut at);
            let root_true = flat.root_is_true();
            for (i, s) in at.iter().map(|s| *s as usize).enumerate() {
                if any_unknown && unknown[i] {
                    continue;
                }
                if !root_true && !flat.root_holds(&matrix[i * width..]) {
                    // The root's predicate turns the row away: no prediction.
                    tally.add(i, w, &none, 0);
                    continue;
                }
                tally.add(i, w, &payload.by_step[s * wk..s * wk + wk], payload.winner_by_step[s]);
            }
            if any_unknown {
                for (i, leaf) in (0..n).filter(|i| unknown[*i]).zip(tree.leaves_of(env, (0..n).filter(|i| unknown[*i]))?) {
                    match leaf {
                        Some(l) => tally.add(i, w, &payload.values[l * wk..l * wk + wk], payload.winner.get(l).copied().unwrap_or(0)),
                        None => tally.add(i, w, &none, 0),
                    }
                }
            }
        }
        let Tally { acc, total, missing, .. } = tally;
        let none = |i: usize| missing[i] || total[i] == 0.0;
        if regression {
            let average = matches!(self.method, Method::Average | Method::WeightedAverage);
            let y: Float64Array = (0..n).map(|i| (!none(i)).then(|| if average { acc[i] / total[i] } else { acc[i] })).collect();
            return Ok(Prediction { predicted: Values::Num(y), probabilities: Vec::new(), outputs: Vec::new() });
        }
        let columns: Vec<Float64Array> = (0..k).map(|j| (0..n).map(|i| (!none(i)).then(|| acc[i * k + j] / total[i])).collect()).collect();
        Ok(Prediction::from_columns(&self.common.categories, columns))
    }

    /// Scores the rows of `env`.
    ///
    /// Errors: a field has no values.
    pub fn evaluate(&self, env: &Env) -> Result<Prediction> {
        if let Some(forest) = &self.forest {
            return self.evaluate_forest(forest, env);
        }
        let n = env.rows;
        let values = self.slots.names.iter().map(|s| env.get(s)).collect::<Result<Vec<_>>>()?;
        let columns: Vec<Column<'_>> = values.iter().map(|v| Column::of(v)).collect();
        let mut env = env.clone();
        let mut results: Vec<(Vec<bool>, f64, Prediction)> = Vec::new();
        for segment in &self.segments {
            let applies: Vec<bool> = (0..n).map(|i| segment.predicate.eval(&columns, i) == Some(true)).collect();
            let prediction = segment.model.evaluate(&env)?;
            if self.method == Method::ModelChain {
                for (name, values) in &prediction.outputs {
                    env.set(name, values.clone());
                }
            }
            results.push((applies, segment.weight, prediction));
        }
        if self.method == Method::ModelChain || self.method == Method::SelectFirst {
            return Ok(self.select(results, n));
        }
        if self.common.function == Function::Regression {
            let y: Float64Array = (0..n).map(|i| self.combine_numbers(&results, i)).collect();
            return Ok(Prediction { predicted: Values::Num(y), probabilities: Vec::new(), outputs: Vec::new() });
        }
        let categories = &self.common.categories;
        let columns = self.combine_classes(&results, categories, n);
        Ok(Prediction::from_columns(categories, columns))
    }

    /// modelChain: the last segment that applies; selectFirst: the first.
    fn select(&self, results: Vec<(Vec<bool>, f64, Prediction)>, n: usize) -> Prediction {
        let pick: Vec<Option<usize>> = (0..n)
            .map(|i| {
                let mut applying = results.iter().enumerate().filter(|(_, r)| r.0[i]).map(|(k, _)| k);
                if self.method == Method::SelectFirst {
                    applying.next()
                } else {
                    applying.next_back()
                }
            })
            .collect();
        if results.len() == 1 || pick.iter().all(|p| *p == Some(results.len() - 1)) && self.method == Method::ModelChain {
            let mut last = results.into_iter().last().map(|r| r.2).unwrap_or_else(|| empty(n));
            last.outputs.clear();
            return last;
        }
        // Rows choose different segments: take each row's value from its segment.
        let first = &results[0].2;
        let predicted = match &first.predicted {
            Values::Num(_) => Values::Num((0..n).map(|i| pick[i].and_then(|k| results[k].2.predicted.num(i))).collect()),
            Values::Str(_) => Values::Str((0..n).map(|i| pick[i].and_then(|k| results[k].2.predicted.text(i))).collect()),
        };
        let probabilities = first
            .probabilities
            .iter()
            .map(|(c, _)| {
                let col: Float64Array = (0..n)
                    .map(|i| {
                        let p = results[pick[i]?].2.probability(c)?;
                        (!p.is_null(i)).then(|| p.value(i))
                    })
                    .collect();
                (c.clone(), col)
            })
            .collect();
        Prediction { predicted, probabilities, outputs: Vec::new() }
    }

    fn combine_numbers(&self, results: &[(Vec<bool>, f64, Prediction)], i: usize) -> Option<f64> {
        let mut values = Vec::with_capacity(results.len());
        for (applies, weight, p) in results {
            if !applies[i] {
                continue;
            }
            match p.predicted.num(i) {
                Some(v) => values.push((v, *weight)),
                None => match self.missing {
                    MissingPrediction::ReturnMissing => return None,
                    MissingPrediction::SkipSegment | MissingPrediction::Continue => {}
                },
            }
        }
        if values.is_empty() {
            return None;
        }
        Some(match self.method {
            Method::Average => values.iter().map(|v| v.0).sum::<f64>() / values.len() as f64,
            Method::WeightedAverage => values.iter().map(|v| v.0 * v.1).sum::<f64>() / values.iter().map(|v| v.1).sum::<f64>(),
            Method::Sum => values.iter().map(|v| v.0).sum(),
            Method::WeightedSum => values.iter().map(|v| v.0 * v.1).sum(),
            Method::Max => values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max),
            Method::Median => {
                let mut v: Vec<f64> = values.iter().map(|v| v.0).collect();
                v.sort_by(f64::total_cmp);
                let m = v.len() / 2;
                if v.len().is_multiple_of(2) {
                    (v[m - 1] + v[m]) / 2.0
                } else {
                    v[m]
                }
            }
            Method::MajorityVote | Method::WeightedMajorityVote | Method::ModelChain | Method::SelectFirst => return None,
        })
    }

    /// One probability column per category over the segments that apply to each row:
    /// averaged (weighted) probabilities, or vote shares; null for a row without a
    /// prediction.
    fn combine_classes(&self, results: &[(Vec<bool>, f64, Prediction)], categories: &[String], n: usize) -> Vec<Float64Array> {
        let k = categories.len();
        let mut acc = vec![vec![0.0; n]; k];
        let mut total = vec![0.0; n];
        let mut missing = vec![false; n];
        let vote = matches!(self.method, Method::MajorityVote | Method::WeightedMajorityVote);
        for (applies, weight, p) in results {
            let w = if matches!(self.method, Method::WeightedAverage | Method::WeightedMajorityVote) { *weight } else { 1.0 };
            // Resolved once per segment, not per row.
            let columns: Vec<Option<&Float64Array>> = categories.iter().map(|c| p.probability(c)).collect();
            for i in 0..n {
                if !applies[i] {
                    continue;
                }
                if p.predicted.is_missing(i) {
                    if self.missing == MissingPrediction::ReturnMissing {
                        missing[i] = true;
                    }
                    continue;
                }
                if vote {
                    let Some(c) = p.predicted.text(i) else { continue };
                    if let Some(j) = categories.iter().position(|d| *d == c).or_else(|| categories.iter().position(|d| same_value(&c, d))) {
                        acc[j][i] += w;
                    }
                } else {
                    for (slot, column) in acc.iter_mut().zip(&columns) {
                        if let Some(a) = column {
                            if !a.is_null(i) {
                                slot[i] += w * a.value(i);
                            }
                        }
                    }
                }
                total[i] += w;
            }
        }
        let none = |i: usize| missing[i] || total[i] == 0.0 || self.method == Method::Max;
        acc.into_iter().map(|a| (0..n).map(|i| (!none(i)).then(|| a[i] / total[i])).collect()).collect()
    }
}

fn empty(n: usize) -> Prediction {
    Prediction { predicted: Values::Num(Float64Array::new_null(n)), probabilities: Vec::new(), outputs: Vec::new() }
}
