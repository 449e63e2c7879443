//! `MiningModel` with a `Segmentation`: ensembles (sklearn2pmml's RandomForest: the
//! average of the trees' probabilities or predictions; GradientBoosting: a model chain
//! of a sum of trees and a logistic link). Each segment's model is evaluated over the
//! whole batch; a segment whose predicate is not `True` counts only for the rows where
//! it holds (PMML 4.4, "Multiple Models").

use arrow::array::{Array, Float64Array};

use crate::error::Result;
use crate::expr::{same_value, Scope};
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
        Ok(MiningModel { common, method, segments, slots, missing })
    }

    /// Scores the rows of `env`.
    ///
    /// Errors: a field has no values.
    pub fn evaluate(&self, env: &Env) -> Result<Prediction> {
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
