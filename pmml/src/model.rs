//! What every model element shares (PMML's `MiningSchema`, `LocalTransformations`,
//! `Targets`, `Output`) and the dispatch to the model kinds: [`crate::regression`],
//! [`crate::tree`], [`crate::mining`].

use std::collections::HashMap;

use arrow::array::{Array, Float64Array, StringArray};

use crate::error::Result;
use crate::expr::{child_expression, Expr, FieldType, Scope};
use crate::mining::MiningModel;
use crate::regression::RegressionModel;
use crate::tree::TreeModel;
use crate::values::{Env, Values};
use crate::xml::Element;

/// A model's `functionName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Regression,
    Classification,
}

/// What a model computed for a batch.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// The predicted value: a number (regression), or the category's text
    /// (classification); null where the model gives none.
    pub predicted: Values,
    /// Classification: each target category with its probability per row.
    pub probabilities: Vec<(String, Float64Array)>,
    /// The `OutputField`s, by name.
    pub outputs: Vec<(String, Values)>,
}

impl Prediction {
    /// The probability column of `category`.
    pub fn probability(&self, category: &str) -> Option<&Float64Array> {
        let exact = self.probabilities.iter().find(|(c, _)| c == category);
        exact.or_else(|| self.probabilities.iter().find(|(c, _)| crate::expr::same_value(c, category))).map(|(_, p)| p)
    }

    /// A classification from one probability column per category (in `categories`'
    /// order; null where the row has no prediction): the predicted category is the most
    /// probable, the first on a tie (as JPMML and scikit-learn's argmax choose).
    pub fn from_columns(categories: &[String], columns: Vec<Float64Array>) -> Prediction {
        let rows = columns.first().map_or(0, |c| c.len());
        let predicted: StringArray = (0..rows)
            .map(|i| {
                let mut best: Option<(usize, f64)> = None;
                for (k, c) in columns.iter().enumerate() {
                    if c.is_null(i) {
                        return None;
                    }
                    let v = c.value(i);
                    if best.is_none_or(|(_, b)| v > b) {
                        best = Some((k, v));
                    }
                }
                best.map(|(k, _)| categories[k].as_str())
            })
            .collect();
        let probabilities = categories.iter().cloned().zip(columns).collect();
        Prediction { predicted: Values::Str(predicted), probabilities, outputs: Vec::new() }
    }
}

/// A `MiningField` that is an input: its missing value replacement and invalid value
/// treatment.
#[derive(Debug, Clone)]
struct MiningField {
    name: String,
    replacement: Option<String>,
    /// Categories of a categorical field (from the DataDictionary); a value outside them
    /// is invalid.
    valid: Option<Vec<String>>,
    invalid: InvalidTreatment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvalidTreatment {
    ReturnInvalid,
    AsIs,
    AsMissing,
}

/// `Target`'s rescaling of a regression prediction.
#[derive(Debug, Clone, Copy)]
struct Rescale {
    factor: f64,
    constant: f64,
    min: Option<f64>,
    max: Option<f64>,
    cast_integer: Option<fn(f64) -> f64>,
}

/// One `OutputField`.
#[derive(Debug, Clone)]
enum OutputField {
    Predicted(String),
    Probability(String, Option<String>),
    Transformed(String, Expr),
}

/// The parts every model has.
#[derive(Debug, Clone)]
pub struct Common {
    pub function: Function,
    /// Classification: the target's categories, in the document's order.
    pub categories: Vec<String>,
    inputs: Vec<MiningField>,
    local: Vec<(String, Expr, FieldType)>,
    rescale: Option<Rescale>,
    outputs: Vec<OutputField>,
}

/// Whatever the document says about its fields, shared while compiling.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// DataField name -> categories (empty for a continuous field).
    pub values: HashMap<String, Vec<String>>,
    /// The target's categories (of the outermost model's target field).
    pub categories: Vec<String>,
    /// Compiling a segment's model: its inputs were checked by the model around it.
    pub nested: bool,
}

/// A compiled model element.
#[derive(Debug, Clone)]
pub enum Model {
    Regression(RegressionModel),
    Tree(TreeModel),
    Mining(MiningModel),
}

/// The model elements of PMML 4.4; those not in [`Model`] are refused by name.
pub const MODEL_ELEMENTS: &[&str] = &[
    "RegressionModel",
    "TreeModel",
    "MiningModel",
    "AnomalyDetectionModel",
    "AssociationModel",
    "BayesianNetworkModel",
    "BaselineModel",
    "ClusteringModel",
    "GaussianProcessModel",
    "GeneralRegressionModel",
    "NaiveBayesModel",
    "NearestNeighborModel",
    "NeuralNetwork",
    "RuleSetModel",
    "SequenceModel",
    "Scorecard",
    "SupportVectorMachineModel",
    "TextModel",
    "TimeSeriesModel",
];

impl Model {
    /// Compiles the model element `element`; `scope` holds the fields it can see and
    /// gains its derived fields and outputs (for a model chain).
    ///
    /// Errors: an unsupported model kind or element, naming it and its line.
    pub fn compile(element: &Element, scope: &mut Scope, dictionary: &Dictionary) -> Result<Model> {
        if !matches!(element.name.as_str(), "RegressionModel" | "TreeModel" | "MiningModel") {
            return Err(element.unsupported(element.name.clone()));
        }
        let common = Common::compile(element, scope, dictionary)?;
        let model = match element.name.as_str() {
            "RegressionModel" => Model::Regression(RegressionModel::compile(element, scope, common)?),
            "TreeModel" => Model::Tree(TreeModel::compile(element, scope, common)?),
            "MiningModel" => Model::Mining(MiningModel::compile(element, scope, common, dictionary)?),
            other => return Err(element.unsupported(other)),
        };
        model.common().declare_outputs(element, scope)?;
        Ok(model)
    }

    /// The shared parts.
    pub fn common(&self) -> &Common {
        match self {
            Model::Regression(m) => &m.common,
            Model::Tree(m) => &m.common,
            Model::Mining(m) => &m.common,
        }
    }

    /// Forgets the fast paths of this model and the models inside it (tests).
    #[cfg(test)]
    pub(crate) fn drop_fast_paths(&mut self) {
        match self {
            Model::Regression(_) => {}
            Model::Tree(t) => t.drop_fast_path(),
            Model::Mining(m) => m.drop_fast_paths(),
        }
    }

    /// Scores the rows of `env`.
    ///
    /// Errors: a field the document uses has no values.
    pub fn evaluate(&self, env: &Env) -> Result<Prediction> {
        let common = self.common();
        let (env, invalid) = common.prepare(env)?;
        let mut prediction = match self {
            Model::Regression(m) => m.evaluate(&env)?,
            Model::Tree(m) => m.evaluate(&env)?,
            Model::Mining(m) => m.evaluate(&env)?,
        };
        if let (Some(r), Values::Num(p)) = (common.rescale, &prediction.predicted) {
            prediction.predicted = Values::Num(p.iter().map(|v| v.map(|v| r.apply(v))).collect());
        }
        if invalid.iter().any(|b| *b) {
            prediction = mask(prediction, &invalid);
        }
        common.outputs(&env, &mut prediction)?;
        Ok(prediction)
    }
}

impl Rescale {
    fn apply(&self, v: f64) -> f64 {
        let mut v = v * self.factor + self.constant;
        if let Some(min) = self.min {
            v = v.max(min);
        }
        if let Some(max) = self.max {
            v = v.min(max);
        }
        match self.cast_integer {
            Some(f) => f(v),
            None => v,
        }
    }
}

/// `prediction` with null where `invalid` is set.
fn mask(prediction: Prediction, invalid: &[bool]) -> Prediction {
    let nulls = |v: Values| match v {
        Values::Num(a) => Values::Num(a.iter().zip(invalid).map(|(x, bad)| if *bad { None } else { x }).collect()),
        Values::Str(a) => Values::Str(a.iter().zip(invalid).map(|(x, bad)| if *bad { None } else { x }).collect()),
    };
    Prediction {
        predicted: nulls(prediction.predicted),
        probabilities: prediction
            .probabilities
            .into_iter()
            .map(|(c, p)| (c, p.iter().zip(invalid).map(|(x, bad)| if *bad { None } else { x }).collect()))
            .collect(),
        outputs: prediction.outputs.into_iter().map(|(n, v)| (n, nulls(v))).collect(),
    }
}

impl Common {
    /// Whether preparing this model's inputs changes nothing and it computes no output:
    /// no missing value replacement or validity check (a nested model's inputs were
    /// checked around it), no LocalTransformations, Targets or Output. A forest scores
    /// such trees without preparing each one.
    pub fn is_passthrough(&self) -> bool {
        self.local.is_empty()
            && self.rescale.is_none()
            && self.outputs.is_empty()
            && self.inputs.iter().all(|f| f.replacement.is_none() && f.valid.is_none())
    }

    /// The active input fields of the model's MiningSchema, in its order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|f| f.name.as_str()).collect()
    }

    /// The names of the model's OutputFields, in order.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(output_name).collect()
    }

    fn compile(element: &Element, scope: &mut Scope, dictionary: &Dictionary) -> Result<Common> {
        let function = match element.required("functionName")? {
            "regression" => Function::Regression,
            "classification" => Function::Classification,
            other => return Err(element.unsupported(format!("functionName=\"{other}\""))),
        };
        let schema = element.first("MiningSchema").ok_or_else(|| element.invalid(format!("{} has no MiningSchema", element.name)))?;
        let mut inputs = Vec::new();
        let mut categories = dictionary.categories.clone();
        for field in schema.all("MiningField") {
            let name = field.required("name")?.to_string();
            match field.attr("usageType").unwrap_or("active") {
                "target" | "predicted" => {
                    if let Some(values) = dictionary.values.get(&name).filter(|v| !v.is_empty()) {
                        categories = values.clone();
                    }
                    continue;
                }
                "active" => {}
                "supplementary" | "group" | "order" | "frequencyWeight" | "analysisWeight" => continue,
                other => return Err(field.unsupported(format!("usageType=\"{other}\""))),
            }
            if !scope.contains_key(&name) {
                return Err(field.invalid(format!("MiningField \"{name}\" is not a field of the document")));
            }
            if field.attr("missingValueTreatment") == Some("returnInvalid") {
                return Err(field.unsupported("missingValueTreatment=\"returnInvalid\""));
            }
            let invalid = match field.attr("invalidValueTreatment").unwrap_or("returnInvalid") {
                "returnInvalid" => InvalidTreatment::ReturnInvalid,
                "asIs" => InvalidTreatment::AsIs,
                "asMissing" => InvalidTreatment::AsMissing,
                other => return Err(field.unsupported(format!("invalidValueTreatment=\"{other}\""))),
            };
            let valid = dictionary.values.get(&name).filter(|v| !v.is_empty() && !dictionary.nested).cloned();
            inputs.push(MiningField { name, replacement: field.attr("missingValueReplacement").map(str::to_string), valid, invalid });
        }
        let mut local = Vec::new();
        if let Some(transformations) = element.first("LocalTransformations") {
            for derived in transformations.all("DerivedField") {
                let name = derived.required("name")?.to_string();
                let (expr, _) = Expr::compile(child_expression(derived)?, scope)?;
                let t = FieldType::of(derived)?;
                scope.insert(name.clone(), t);
                local.push((name, expr, t));
            }
        }
        let rescale = match element.first("Targets").map(|t| t.all("Target").collect::<Vec<_>>()) {
            None => None,
            Some(targets) if targets.len() > 1 => return Err(element.unsupported("more than one Target")),
            Some(targets) => match targets.first() {
                None => None,
                Some(t) => {
                    if t.first("TargetValue").is_some() && function == Function::Regression {
                        return Err(t.unsupported("TargetValue of a regression"));
                    }
                    let cast_integer: Option<fn(f64) -> f64> = match t.attr("castInteger") {
                        None => None,
                        Some("round") => Some(f64::round),
                        Some("ceiling") => Some(f64::ceil),
                        Some("floor") => Some(f64::floor),
                        Some(other) => return Err(t.unsupported(format!("castInteger=\"{other}\""))),
                    };
                    Some(Rescale {
                        factor: t.number("rescaleFactor", 1.0)?,
                        constant: t.number("rescaleConstant", 0.0)?,
                        min: t.attr("min").map(|_| t.number("min", 0.0)).transpose()?,
                        max: t.attr("max").map(|_| t.number("max", 0.0)).transpose()?,
                        cast_integer,
                    })
                }
            },
        };
        let mut outputs = Vec::new();
        if let Some(output) = element.first("Output") {
            for field in output.all("OutputField") {
                let name = field.required("name")?.to_string();
                outputs.push(match field.attr("feature").unwrap_or("predictedValue") {
                    "predictedValue" => OutputField::Predicted(name),
                    "probability" => OutputField::Probability(name, field.attr("value").map(str::to_string)),
                    "transformedValue" => {
                        let (expr, _) = Expr::compile(child_expression(field)?, &{
                            let mut s = scope.clone();
                            for o in &outputs {
                                s.insert(output_name(o).to_string(), FieldType::Double);
                            }
                            s
                        })?;
                        OutputField::Transformed(name, expr)
                    }
                    other => return Err(field.unsupported(format!("feature=\"{other}\""))),
                });
            }
        }
        Ok(Common { function, categories, inputs, local, rescale, outputs })
    }

    /// Adds the model's outputs to `scope` (a later model of a chain may use them).
    fn declare_outputs(&self, element: &Element, scope: &mut Scope) -> Result<()> {
        let output = element.first("Output");
        for o in &self.outputs {
            let t = output
                .and_then(|out| out.all("OutputField").find(|f| f.attr("name") == Some(output_name(o))))
                .map(FieldType::of)
                .transpose()?
                .unwrap_or(FieldType::Double);
            scope.insert(output_name(o).to_string(), t);
        }
        Ok(())
    }

    /// The model's view of `env`: missing inputs replaced, invalid ones handled, derived
    /// fields computed; and which rows are invalid (their result is null).
    fn prepare(&self, env: &Env) -> Result<(Env, Vec<bool>)> {
        let mut env = env.clone();
        let mut invalid = vec![false; env.rows];
        for field in &self.inputs {
            let mut values = env.get(&field.name)?.clone();
            if let Some(valid) = &field.valid {
                if field.invalid != InvalidTreatment::AsIs {
                    let is_valid = |t: &str| valid.iter().any(|v| v == t) || valid.iter().any(|v| crate::expr::same_value(t, v));
                    let bad: Vec<bool> = match &values {
                        Values::Str(a) => (0..env.rows).map(|i| !a.is_null(i) && !is_valid(a.value(i))).collect(),
                        Values::Num(_) => (0..env.rows).map(|i| values.text(i).is_some_and(|t| !is_valid(&t))).collect(),
                    };
                    if bad.iter().any(|b| *b) {
                        match field.invalid {
                            InvalidTreatment::ReturnInvalid => invalid.iter_mut().zip(&bad).for_each(|(i, b)| *i |= *b),
                            _ => values = null_where(values, &bad),
                        }
                    }
                }
            }
            if let Some(r) = &field.replacement {
                values = match values {
                    Values::Num(a) if a.null_count() > 0 => {
                        let r: f64 = r.trim().parse().map_err(|_| {
                            crate::PmmlError::Input(format!("missingValueReplacement '{r}' of {} is not a number", field.name))
                        })?;
                        Values::Num(a.iter().map(|v| Some(v.unwrap_or(r))).collect())
                    }
                    Values::Str(a) if a.null_count() > 0 => Values::Str(a.iter().map(|v| Some(v.unwrap_or(r))).collect()),
                    other => other,
                };
            }
            env.set(&field.name, values);
        }
        for (name, expr, t) in &self.local {
            let values = match (expr.eval(&env)?, t) {
                (Values::Num(a), FieldType::Float) => Values::Num(a.iter().map(|v| v.map(|v| v as f32 as f64)).collect()),
                (Values::Num(a), FieldType::String) => Values::Str(a.iter().map(|v| v.map(crate::values::format_number)).collect()),
                (v, _) => v,
            };
            env.set(name, values);
        }
        Ok((env, invalid))
    }

    /// Computes the output fields into `prediction.outputs`.
    fn outputs(&self, env: &Env, prediction: &mut Prediction) -> Result<()> {
        let mut env = env.clone();
        for o in &self.outputs {
            let values = match o {
                OutputField::Predicted(_) => prediction.predicted.clone(),
                OutputField::Probability(_, Some(category)) => {
                    Values::Num(prediction.probability(category).cloned().unwrap_or_else(|| Float64Array::new_null(env.rows)))
                }
                OutputField::Probability(_, None) => {
                    let predicted = &prediction.predicted;
                    Values::Num(
                        (0..env.rows)
                            .map(|i| {
                                let c = predicted.text(i)?;
                                let p = prediction.probability(&c)?;
                                (!p.is_null(i)).then(|| p.value(i))
                            })
                            .collect(),
                    )
                }
                OutputField::Transformed(_, expr) => expr.eval(&env)?,
            };
            env.set(output_name(o), values.clone());
            prediction.outputs.push((output_name(o).to_string(), values));
        }
        Ok(())
    }
}

fn output_name(o: &OutputField) -> &str {
    match o {
        OutputField::Predicted(n) | OutputField::Probability(n, _) | OutputField::Transformed(n, _) => n,
    }
}

fn null_where(values: Values, bad: &[bool]) -> Values {
    match values {
        Values::Num(a) => Values::Num(a.iter().zip(bad).map(|(v, b)| if *b { None } else { v }).collect()),
        Values::Str(a) => Values::Str(a.iter().zip(bad).map(|(v, b)| if *b { None } else { v }).collect()),
    }
}
