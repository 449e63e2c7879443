//! `TreeModel`: decision trees (sklearn2pmml's DecisionTree, and the members of
//! RandomForest and GradientBoosting). The nodes are compiled into an arena with their
//! predicates' fields resolved to column slots; each row walks from the root, following
//! the first child whose predicate is TRUE (PMML 4.4, "TreeModel"), with the document's
//! `missingValueStrategy` for UNKNOWN and `noTrueChildStrategy` for a node none of
//! whose children holds.

use arrow::array::Float64Array;

use crate::error::Result;
use crate::expr::{same_value, Scope};
use crate::flat::{Features, FlatTree};
use crate::model::{Common, Function, Prediction};
use crate::predicate::{child_predicate, Column, Predicate, Slots};
use crate::values::{Env, Values};
use crate::xml::Element;

/// A compiled `TreeModel`.
#[derive(Debug, Clone)]
pub struct TreeModel {
    pub common: Common,
    nodes: Vec<Node>,
    slots: Slots,
    missing: MissingStrategy,
    no_true_child: NoTrueChild,
    categories: Vec<String>,
    /// The nodes laid out for the fast walk, with the features they compare (`None`:
    /// a predicate only the general walk evaluates).
    flat: Option<(Features, FlatTree)>,
}

#[derive(Debug, Clone)]
struct Node {
    predicate: Predicate,
    /// The score as a number (a regression's prediction).
    value: Option<f64>,
    /// Classification: probability per category of [`TreeModel::categories`].
    probabilities: Option<Vec<f64>>,
    children: Vec<usize>,
    id: Option<String>,
    default_child: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingStrategy {
    None,
    NullPrediction,
    LastPrediction,
    DefaultChild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoTrueChild {
    ReturnNull,
    ReturnLast,
}

impl TreeModel {
    /// Compiles `element`.
    ///
    /// Errors: an unsupported strategy or predicate, an unknown field.
    pub fn compile(element: &Element, scope: &Scope, common: Common) -> Result<TreeModel> {
        let missing = match element.attr("missingValueStrategy").unwrap_or("none") {
            "none" => MissingStrategy::None,
            "nullPrediction" => MissingStrategy::NullPrediction,
            "lastPrediction" => MissingStrategy::LastPrediction,
            "defaultChild" => MissingStrategy::DefaultChild,
            other => return Err(element.unsupported(format!("missingValueStrategy=\"{other}\""))),
        };
        let no_true_child = match element.attr("noTrueChildStrategy").unwrap_or("returnNullPrediction") {
            "returnNullPrediction" => NoTrueChild::ReturnNull,
            "returnLastPrediction" => NoTrueChild::ReturnLast,
            other => return Err(element.unsupported(format!("noTrueChildStrategy=\"{other}\""))),
        };
        if let Some(s) = element.attr("splitCharacteristic").filter(|s| *s != "binarySplit" && *s != "multiSplit") {
            return Err(element.unsupported(format!("splitCharacteristic=\"{s}\"")));
        }
        let root = element.first("Node").ok_or_else(|| element.invalid("TreeModel has no Node"))?;
        let mut categories = common.categories.clone();
        if common.function == Function::Classification && categories.is_empty() {
            collect_categories(root, &mut categories);
        }
        let mut tree = TreeModel { common, nodes: Vec::new(), slots: Slots::default(), missing, no_true_child, categories, flat: None };
        tree.add(root, scope)?;
        let mut features = Features::default();
        tree.flat = tree.flatten(&mut features).map(|f| (features, f));
        Ok(tree)
    }

    /// The tree laid out for the fast walk, its features added to `features` (shared
    /// by the trees of a forest); `None` when a predicate is compound or a surrogate.
    pub(crate) fn flatten(&self, features: &mut Features) -> Option<FlatTree> {
        FlatTree::build(
            self.nodes.len(),
            |k| &self.nodes[k].predicate,
            |k| self.nodes[k].children.as_slice(),
            &self.slots.names,
            self.no_true_child == NoTrueChild::ReturnLast,
            features,
        )
    }

    /// The node each row of `env` ends at: by `flat` over the feature `matrix` (rows x
    /// `width`) where no feature of the row is UNKNOWN, by the general walk elsewhere.
    ///
    /// Errors: a field of a predicate has no values.
    pub(crate) fn leaves(&self, env: &Env, flat: &FlatTree, matrix: &[f64], width: usize, unknown: &[bool]) -> Result<Vec<Option<usize>>> {
        let mut leaves = vec![None; env.rows];
        flat.walk_each(matrix, width, env.rows, |i, leaf| leaves[i] = leaf);
        if unknown.iter().any(|u| *u) {
            let rows = || (0..env.rows).filter(|i| unknown[*i]);
            for (i, leaf) in rows().zip(self.leaves_of(env, rows())?) {
                leaves[i] = leaf;
            }
        }
        Ok(leaves)
    }

    /// The node each of `rows` ends at by the general walk.
    ///
    /// Errors: a field of a predicate has no values.
    pub(crate) fn leaves_of(&self, env: &Env, rows: impl Iterator<Item = usize>) -> Result<Vec<Option<usize>>> {
        let values = self.slots.names.iter().map(|n| env.get(n)).collect::<Result<Vec<_>>>()?;
        let columns: Vec<Column<'_>> = values.iter().map(|v| Column::of(v)).collect();
        Ok(rows.map(|i| self.walk(&columns, i)).collect())
    }

    /// Forgets the flat layout (tests).
    #[cfg(test)]
    pub(crate) fn drop_fast_path(&mut self) {
        self.flat = None;
    }

    /// Nodes in the tree's arena.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A regression leaf's score.
    pub(crate) fn leaf_value(&self, node: usize) -> Option<f64> {
        self.nodes[node].value
    }

    /// A classification leaf's probabilities, by [`TreeModel::categories`].
    pub(crate) fn leaf_probabilities(&self, node: usize) -> Option<&[f64]> {
        self.nodes[node].probabilities.as_deref()
    }

    /// The target's categories, in the order of the leaves' probabilities.
    pub(crate) fn categories(&self) -> &[String] {
        &self.categories
    }

    fn add(&mut self, element: &Element, scope: &Scope) -> Result<usize> {
        let predicate = Predicate::compile(child_predicate(element)?, scope, &mut self.slots)?;
        let probabilities = if self.common.function == Function::Classification {
            let distribution: Vec<&Element> = element.all("ScoreDistribution").collect();
            if distribution.is_empty() {
                // A leaf with only a score is certain of it.
                element.attr("score").map(|score| self.categories.iter().map(|c| if same_value(score, c) { 1.0 } else { 0.0 }).collect())
            } else {
                let mut p = vec![0.0; self.categories.len()];
                let mut total = 0.0;
                let mut explicit = true;
                for d in &distribution {
                    let value = d.required("value")?;
                    let k = self
                        .categories
                        .iter()
                        .position(|c| same_value(value, c))
                        .ok_or_else(|| d.invalid(format!("'{value}' is not a category of the target")))?;
                    match d.attr("probability") {
                        Some(_) => p[k] = d.number("probability", 0.0)?,
                        None => {
                            explicit = false;
                            p[k] = d.number("recordCount", 0.0)?;
                        }
                    }
                    total += d.number("recordCount", 0.0)?;
                }
                if !explicit && total > 0.0 {
                    p.iter_mut().for_each(|v| *v /= total);
                }
                Some(p)
            }
        } else {
            None
        };
        let index = self.nodes.len();
        self.nodes.push(Node {
            predicate,
            value: element.attr("score").and_then(|s| s.trim().parse().ok()),
            probabilities,
            children: Vec::new(),
            id: element.attr("id").map(str::to_string),
            default_child: element.attr("defaultChild").map(str::to_string),
        });
        if element.first("Partition").is_some() || element.first("Regression").is_some() || element.first("DecisionTree").is_some() {
            return Err(element.unsupported("a model inside a Node"));
        }
        for child in element.all("Node") {
            let c = self.add(child, scope)?;
            self.nodes[index].children.push(c);
        }
        Ok(index)
    }

    /// The node row `i` ends at, if any.
    fn walk(&self, columns: &[Column<'_>], i: usize) -> Option<usize> {
        if self.nodes[0].predicate.eval(columns, i) != Some(true) {
            return None;
        }
        let mut at = 0;
        loop {
            let node = &self.nodes[at];
            if node.children.is_empty() {
                return Some(at);
            }
            let mut next = None;
            for &c in &node.children {
                match self.nodes[c].predicate.eval(columns, i) {
                    Some(true) => {
                        next = Some(c);
                        break;
                    }
                    Some(false) => {}
                    None => match self.missing {
                        MissingStrategy::None => {}
                        MissingStrategy::NullPrediction => return None,
                        MissingStrategy::LastPrediction => return Some(at),
                        MissingStrategy::DefaultChild => {
                            next = node
                                .children
                                .iter()
                                .copied()
                                .find(|k| self.nodes[*k].id.is_some() && self.nodes[*k].id == node.default_child);
                            if next.is_none() {
                                return Some(at);
                            }
                            break;
                        }
                    },
                }
            }
            match next {
                Some(c) => at = c,
                None if self.no_true_child == NoTrueChild::ReturnLast => return Some(at),
                None => return None,
            }
        }
    }

    /// Scores the rows of `env`.
    ///
    /// Errors: a field of a predicate has no values.
    pub fn evaluate(&self, env: &Env) -> Result<Prediction> {
        let leaves: Vec<Option<usize>> = match &self.flat {
            Some((features, flat)) => {
                let (matrix, unknown) = features.matrix(env)?;
                self.leaves(env, flat, &matrix, features.width(), &unknown)?
            }
            None => {
                let values = self.slots.names.iter().map(|n| env.get(n)).collect::<Result<Vec<_>>>()?;
                let columns: Vec<Column<'_>> = values.iter().map(|v| Column::of(v)).collect();
                (0..env.rows).map(|i| self.walk(&columns, i)).collect()
            }
        };
        if self.common.function == Function::Regression {
            let y: Float64Array = leaves.iter().map(|l| l.and_then(|l| self.nodes[l].value)).collect();
            return Ok(Prediction { predicted: Values::Num(y), probabilities: Vec::new(), outputs: Vec::new() });
        }
        let columns: Vec<Float64Array> = (0..self.categories.len())
            .map(|k| leaves.iter().map(|l| l.and_then(|l| self.nodes[l].probabilities.as_ref()).map(|p| p[k])).collect())
            .collect();
        Ok(Prediction::from_columns(&self.categories, columns))
    }
}

fn collect_categories(node: &Element, out: &mut Vec<String>) {
    for d in node.all("ScoreDistribution") {
        if let Some(v) = d.attr("value") {
            if !out.iter().any(|c| c == v) {
                out.push(v.to_string());
            }
        }
    }
    if let Some(s) = node.attr("score") {
        if !out.iter().any(|c| c == s) {
            out.push(s.to_string());
        }
    }
    for child in node.all("Node") {
        collect_categories(child, out);
    }
}
