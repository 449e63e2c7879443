//! `RegressionModel`: linear and logistic regression (sklearn2pmml's LinearRegression,
//! LogisticRegression and the last stage of GradientBoosting). Each `RegressionTable` is
//! `intercept + sum(coefficient * x^exponent) + sum(coefficient if x = value) +
//! sum(coefficient * product of fields)`, computed a column at a time; a classifier's
//! tables are normalized into probabilities (PMML 4.4, "Regression", normalizationMethod).

use arrow::array::{Array, Float64Array};

use crate::error::Result;
use crate::expr::{same_value, Scope};
use crate::model::{Common, Function, Prediction};
use crate::values::{Env, Values};
use crate::xml::Element;

/// A compiled `RegressionModel`.
#[derive(Debug, Clone)]
pub struct RegressionModel {
    pub common: Common,
    tables: Vec<Table>,
    normalization: Normalization,
}

#[derive(Debug, Clone)]
struct Table {
    intercept: f64,
    category: Option<String>,
    numeric: Vec<(String, f64, i32)>,
    categorical: Vec<(String, String, f64)>,
    terms: Vec<(Vec<String>, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalization {
    None,
    Logit,
    Softmax,
    Simplemax,
    Exp,
    Cloglog,
    Loglog,
    Cauchit,
}

impl RegressionModel {
    /// Compiles `element`.
    ///
    /// Errors: an unknown field, an unsupported normalization.
    pub fn compile(element: &Element, scope: &Scope, common: Common) -> Result<RegressionModel> {
        let normalization = match element.attr("normalizationMethod").unwrap_or("none") {
            "none" => Normalization::None,
            "logit" => Normalization::Logit,
            "softmax" => Normalization::Softmax,
            "simplemax" => Normalization::Simplemax,
            "exp" => Normalization::Exp,
            "cloglog" => Normalization::Cloglog,
            "loglog" => Normalization::Loglog,
            "cauchit" => Normalization::Cauchit,
            other => return Err(element.unsupported(format!("normalizationMethod=\"{other}\""))),
        };
        let field = |e: &Element, name: &str| -> Result<String> {
            scope.contains_key(name).then(|| name.to_string()).ok_or_else(|| e.invalid(format!("field \"{name}\" is not defined")))
        };
        let mut tables = Vec::new();
        for t in element.all("RegressionTable") {
            let mut table = Table {
                intercept: t.number("intercept", 0.0)?,
                category: t.attr("targetCategory").map(str::to_string),
                numeric: Vec::new(),
                categorical: Vec::new(),
                terms: Vec::new(),
            };
            for p in t.all("NumericPredictor") {
                let exponent = p.number("exponent", 1.0)?;
                table.numeric.push((field(p, p.required("name")?)?, p.number("coefficient", 0.0)?, exponent as i32));
            }
            for p in t.all("CategoricalPredictor") {
                table.categorical.push((field(p, p.required("name")?)?, p.required("value")?.to_string(), p.number("coefficient", 0.0)?));
            }
            for p in t.all("PredictorTerm") {
                let fields = p.all("FieldRef").map(|f| field(f, f.required("field")?)).collect::<Result<Vec<_>>>()?;
                table.terms.push((fields, p.number("coefficient", 0.0)?));
            }
            tables.push(table);
        }
        if tables.is_empty() {
            return Err(element.invalid("RegressionModel has no RegressionTable"));
        }
        if common.function == Function::Classification && tables.iter().any(|t| t.category.is_none()) {
            return Err(element.invalid("a classification RegressionTable has no targetCategory"));
        }
        Ok(RegressionModel { common, tables, normalization })
    }

    /// One column per table: its value per row (null where an input is missing).
    fn table_values(&self, table: &Table, env: &Env) -> Result<Vec<Option<f64>>> {
        let n = env.rows;
        let mut sum: Vec<Option<f64>> = vec![Some(table.intercept); n];
        for (name, coefficient, exponent) in &table.numeric {
            let v = env.get(name)?;
            if let Values::Num(a) = v {
                let values = a.values();
                for (i, s) in sum.iter_mut().enumerate() {
                    if a.is_valid(i) {
                        if let Some(s) = s {
                            let x = values[i];
                            *s += coefficient * if *exponent == 1 { x } else { x.powi(*exponent) };
                        }
                    } else {
                        *s = None;
                    }
                }
            } else {
                for (i, s) in sum.iter_mut().enumerate() {
                    match (v.num(i), s.as_mut()) {
                        (Some(x), Some(s)) => *s += coefficient * x.powi(*exponent),
                        _ => *s = None,
                    }
                }
            }
        }
        for (name, value, coefficient) in &table.categorical {
            // Borrowed text, no allocation per row; a number compares as a number.
            let column = crate::predicate::Column::of(env.get(name)?);
            let number: Option<f64> = value.trim().parse().ok();
            for (i, s) in sum.iter_mut().enumerate() {
                if column.is_missing(i) {
                    *s = None;
                    continue;
                }
                let matches = match column {
                    crate::predicate::Column::Str(a) => a.value(i) == value || (number.is_some() && same_value(a.value(i), value)),
                    crate::predicate::Column::Num(..) => number.is_some_and(|n| column.num(i) == Some(n)),
                };
                if let (true, Some(s)) = (matches, s.as_mut()) {
                    *s += coefficient;
                }
            }
        }
        for (fields, coefficient) in &table.terms {
            let columns = fields.iter().map(|f| env.get(f)).collect::<Result<Vec<_>>>()?;
            for (i, s) in sum.iter_mut().enumerate() {
                let product: Option<f64> = columns.iter().map(|c| c.num(i)).product();
                match (product, s.as_mut()) {
                    (Some(p), Some(s)) => *s += coefficient * p,
                    _ => *s = None,
                }
            }
        }
        Ok(sum)
    }

    /// Scores the rows of `env` (already prepared by [`crate::model::Model::evaluate`]).
    ///
    /// Errors: an input field has no values.
    pub fn evaluate(&self, env: &Env) -> Result<Prediction> {
        let columns = self.tables.iter().map(|t| self.table_values(t, env)).collect::<Result<Vec<_>>>()?;
        if self.common.function == Function::Regression {
            let y: Float64Array = columns[0].iter().map(|v| v.map(|v| regression_normalize(self.normalization, v))).collect();
            return Ok(Prediction { predicted: Values::Num(y), probabilities: Vec::new(), outputs: Vec::new() });
        }
        let categories: Vec<String> = self.tables.iter().filter_map(|t| t.category.clone()).collect();
        let k = categories.len();
        // In the order of the target's categories where the document lists them.
        let order: Vec<String> =
            if self.common.categories.len() == k && categories.iter().all(|c| self.common.categories.iter().any(|d| same_value(c, d))) {
                self.common.categories.clone()
            } else {
                categories.clone()
            };
        let index: Vec<usize> = order.iter().map(|c| categories.iter().position(|d| same_value(c, d)).unwrap_or(0)).collect();
        let mut builders: Vec<Vec<Option<f64>>> = (0..k).map(|_| Vec::with_capacity(env.rows)).collect();
        let mut y = vec![0.0; k];
        let mut p = vec![0.0; k];
        for i in 0..env.rows {
            let complete = columns.iter().zip(y.iter_mut()).all(|(c, y)| c[i].map(|v| *y = v).is_some());
            if complete {
                classify(self.normalization, &y, &mut p);
                for (b, j) in builders.iter_mut().zip(&index) {
                    b.push(Some(p[*j]));
                }
            } else {
                builders.iter_mut().for_each(|b| b.push(None));
            }
        }
        Ok(Prediction::from_columns(&order, builders.into_iter().map(Float64Array::from).collect()))
    }
}

fn regression_normalize(method: Normalization, y: f64) -> f64 {
    match method {
        Normalization::Logit => 1.0 / (1.0 + (-y).exp()),
        Normalization::Exp => y.exp(),
        Normalization::Cloglog => 1.0 - (-(y.exp())).exp(),
        Normalization::Loglog => (-(-y).exp()).exp(),
        Normalization::Cauchit => 0.5 + y.atan() / std::f64::consts::PI,
        _ => y,
    }
}

/// The probabilities of the categories from the tables' values `y`, into `p` (PMML's
/// rules: with two categories and a binary method, the second is 1 minus the first).
fn classify(method: Normalization, y: &[f64], p: &mut [f64]) {
    let k = y.len();
    match method {
        Normalization::Softmax => {
            let max = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for (p, v) in p.iter_mut().zip(y) {
                *p = (v - max).exp();
                sum += *p;
            }
            p.iter_mut().for_each(|v| *v /= sum);
        }
        Normalization::Simplemax => {
            let sum: f64 = y.iter().sum();
            p.iter_mut().zip(y).for_each(|(p, v)| *p = v / sum);
        }
        Normalization::None if k == 2 => {
            p[0] = y[0];
            p[1] = 1.0 - y[0];
        }
        Normalization::None => p.copy_from_slice(y),
        binary if k == 2 => {
            p[0] = regression_normalize(binary, y[0]);
            p[1] = 1.0 - p[0];
        }
        other => {
            let mut sum = 0.0;
            for (p, v) in p.iter_mut().zip(y) {
                *p = regression_normalize(other, *v);
                sum += *p;
            }
            p.iter_mut().for_each(|v| *v /= sum);
        }
    }
}
