//! Expressions of `DerivedField`s (PMML's transformations), compiled once and evaluated a
//! column at a time: `FieldRef`, `Constant`, `Apply`, `NormContinuous`, `NormDiscrete`,
//! `MapValues`. These are what sklearn2pmml writes for StandardScaler, OneHotEncoder,
//! the imputers and the other preprocessing steps of a pipeline.

use std::collections::HashMap;

use arrow::array::{Float64Array, StringArray};

use crate::error::{PmmlError, Result};
use crate::values::{Env, Values};
use crate::xml::Element;

/// PMML data types, as far as evaluation tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `double` and `integer`.
    Double,
    /// `float`: values are rounded to f32.
    Float,
    /// `string` (and any categorical text).
    String,
    /// `boolean`, held as 1.0 / 0.0.
    Boolean,
}

impl FieldType {
    /// The type of a `dataType` attribute (`None`: double).
    pub fn of(element: &Element) -> Result<FieldType> {
        Ok(match element.attr("dataType").unwrap_or("double") {
            "double" | "integer" => FieldType::Double,
            "float" => FieldType::Float,
            "string" => FieldType::String,
            "boolean" => FieldType::Boolean,
            other => return Err(element.unsupported(format!("dataType=\"{other}\""))),
        })
    }

    /// Whether values of this type are numbers.
    pub fn is_numeric(self) -> bool {
        self != FieldType::String
    }

    /// `v` as a value of this type (a float rounded to f32).
    pub fn round(self, v: f64) -> f64 {
        if self == FieldType::Float {
            v as f32 as f64
        } else {
            v
        }
    }
}

/// Field name -> type, for the fields a model can see while it is compiled.
pub type Scope = HashMap<String, FieldType>;

/// A compiled expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// `FieldRef`, with `mapMissingTo`.
    Field { name: String, map_missing_to: Option<String> },
    /// `Constant`: a number, a string, or missing.
    Constant(Option<String>, FieldType),
    /// `Apply` of a built-in function.
    Apply { function: Function, args: Vec<Expr>, map_missing_to: Option<f64>, default_value: Option<f64> },
    /// `NormContinuous`: piecewise linear over `(orig, norm)` points.
    NormContinuous { field: String, points: Vec<(f64, f64)>, outliers: Outliers, map_missing_to: Option<f64> },
    /// `NormDiscrete`: 1 where the field equals `value`, else 0.
    NormDiscrete { field: String, value: String, map_missing_to: Option<f64> },
    /// `MapValues`: a lookup of the input fields' values in an inline table.
    MapValues {
        inputs: Vec<String>,
        table: HashMap<Vec<String>, String>,
        map_missing_to: Option<String>,
        default_value: Option<String>,
        numeric: bool,
    },
}

/// `NormContinuous`'s `outliers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outliers {
    /// `asIs`: extrapolate from the outer segments.
    Extrapolate,
    /// `asMissingValues`: missing outside the points.
    Missing,
    /// `asExtremeValues`: the outer points' values.
    Extreme,
}

/// The built-in functions of `Apply` that Eddy evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    Sum,
    Avg,
    Log10,
    Ln,
    Exp,
    Sqrt,
    Abs,
    Pow,
    Floor,
    Ceil,
    Round,
    Threshold,
    IsMissing,
    IsNotMissing,
    Equal,
    NotEqual,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
    And,
    Or,
    Not,
    If,
}

impl Function {
    fn of(element: &Element) -> Result<Function> {
        let name = element.required("function")?;
        Ok(match name {
            "+" => Function::Add,
            "-" => Function::Sub,
            "*" => Function::Mul,
            "/" => Function::Div,
            "min" => Function::Min,
            "max" => Function::Max,
            "sum" => Function::Sum,
            "avg" => Function::Avg,
            "log10" => Function::Log10,
            "ln" => Function::Ln,
            "exp" => Function::Exp,
            "sqrt" => Function::Sqrt,
            "abs" => Function::Abs,
            "pow" => Function::Pow,
            "floor" => Function::Floor,
            "ceil" => Function::Ceil,
            "round" => Function::Round,
            "threshold" => Function::Threshold,
            "isMissing" => Function::IsMissing,
            "isNotMissing" => Function::IsNotMissing,
            "equal" => Function::Equal,
            "notEqual" => Function::NotEqual,
            "lessThan" => Function::LessThan,
            "lessOrEqual" => Function::LessOrEqual,
            "greaterThan" => Function::GreaterThan,
            "greaterOrEqual" => Function::GreaterOrEqual,
            "and" => Function::And,
            "or" => Function::Or,
            "not" => Function::Not,
            "if" => Function::If,
            other => return Err(element.unsupported(format!("the function \"{other}\""))),
        })
    }
}

/// The child elements that are expressions.
const EXPRESSIONS: &[&str] =
    &["FieldRef", "Constant", "Apply", "NormContinuous", "NormDiscrete", "MapValues", "Discretize", "TextIndex", "Aggregate", "Lag"];

/// The first expression child of `element`.
///
/// Errors: there is none.
pub fn child_expression(element: &Element) -> Result<&Element> {
    element
        .children
        .iter()
        .find(|c| EXPRESSIONS.contains(&c.name.as_str()))
        .ok_or_else(|| element.invalid(format!("{} holds no expression", element.name)))
}

fn number_attr(element: &Element, name: &str) -> Result<Option<f64>> {
    element.attr(name).map(|_| element.number(name, 0.0)).transpose()
}

fn known(scope: &Scope, element: &Element, field: &str) -> Result<FieldType> {
    scope.get(field).copied().ok_or_else(|| element.invalid(format!("field \"{field}\" is not defined")))
}

impl Expr {
    /// Compiles the expression `element` over the fields of `scope`; returns it with the
    /// type of its values.
    ///
    /// Errors: an unsupported element or function, a field not in scope.
    pub fn compile(element: &Element, scope: &Scope) -> Result<(Expr, FieldType)> {
        Ok(match element.name.as_str() {
            "FieldRef" => {
                let name = element.required("field")?.to_string();
                let t = known(scope, element, &name)?;
                (Expr::Field { name, map_missing_to: element.attr("mapMissingTo").map(str::to_string) }, t)
            }
            "Constant" => {
                let t = match element.attr("dataType") {
                    Some(_) => FieldType::of(element)?,
                    None if element.text.parse::<f64>().is_ok() => FieldType::Double,
                    None => FieldType::String,
                };
                let missing = element.attr("missing") == Some("true");
                (Expr::Constant((!missing).then(|| element.text.clone()), t), t)
            }
            "Apply" => {
                let function = Function::of(element)?;
                let mut args = Vec::new();
                let mut types = Vec::new();
                for child in element.children.iter().filter(|c| EXPRESSIONS.contains(&c.name.as_str())) {
                    let (e, t) = Expr::compile(child, scope)?;
                    args.push(e);
                    types.push(t);
                }
                if element.attr("invalidValueTreatment").is_some_and(|v| v != "returnInvalid" && v != "asMissing") {
                    return Err(element
                        .unsupported(format!("invalidValueTreatment=\"{}\"", element.attr("invalidValueTreatment").unwrap_or_default())));
                }
                if function == Function::If && types.iter().skip(1).any(|t| !t.is_numeric()) {
                    return Err(element.unsupported("\"if\" with text values"));
                }
                let t = FieldType::Double;
                let expr = Expr::Apply {
                    function,
                    args,
                    map_missing_to: number_attr(element, "mapMissingTo")?,
                    default_value: number_attr(element, "defaultValue")?,
                };
                (expr, t)
            }
            "NormContinuous" => {
                let field = element.required("field")?.to_string();
                known(scope, element, &field)?;
                let points =
                    element.all("LinearNorm").map(|p| Ok((p.number("orig", 0.0)?, p.number("norm", 0.0)?))).collect::<Result<Vec<_>>>()?;
                if points.len() < 2 {
                    return Err(element.invalid("NormContinuous needs two LinearNorm points at least"));
                }
                let outliers = match element.attr("outliers").unwrap_or("asIs") {
                    "asIs" => Outliers::Extrapolate,
                    "asMissingValues" => Outliers::Missing,
                    "asExtremeValues" => Outliers::Extreme,
                    other => return Err(element.unsupported(format!("outliers=\"{other}\""))),
                };
                (Expr::NormContinuous { field, points, outliers, map_missing_to: number_attr(element, "mapMissingTo")? }, FieldType::Double)
            }
            "NormDiscrete" => {
                let field = element.required("field")?.to_string();
                known(scope, element, &field)?;
                let value = element.required("value")?.to_string();
                (Expr::NormDiscrete { field, value, map_missing_to: number_attr(element, "mapMissingTo")? }, FieldType::Double)
            }
            "MapValues" => {
                let output = element.required("outputColumn")?.to_string();
                let mut inputs = Vec::new();
                let mut columns = Vec::new();
                for pair in element.all("FieldColumnPair") {
                    let field = pair.required("field")?.to_string();
                    known(scope, pair, &field)?;
                    inputs.push(field);
                    columns.push(pair.required("column")?.to_string());
                }
                let inline = element.first("InlineTable").ok_or_else(|| match element.first("TableLocator") {
                    Some(t) => t.unsupported("TableLocator"),
                    None => element.invalid("MapValues has no InlineTable"),
                })?;
                let mut table = HashMap::new();
                for row in inline.all("row") {
                    let cell = |column: &str| row.children.iter().find(|c| c.name == column).map(|c| c.text.clone());
                    let key: Option<Vec<String>> = columns.iter().map(|c| cell(c)).collect();
                    if let (Some(key), Some(value)) = (key, cell(&output)) {
                        table.entry(key).or_insert(value);
                    }
                }
                let t = FieldType::of(element)?;
                let expr = Expr::MapValues {
                    inputs,
                    table,
                    map_missing_to: element.attr("mapMissingTo").map(str::to_string),
                    default_value: element.attr("defaultValue").map(str::to_string),
                    numeric: t.is_numeric(),
                };
                (expr, t)
            }
            other => return Err(element.unsupported(other)),
        })
    }

    /// The expression's values over the rows of `env`.
    ///
    /// Errors: a field without values (a document that refers to a field it does not
    /// compute).
    pub fn eval(&self, env: &Env) -> Result<Values> {
        let n = env.rows;
        Ok(match self {
            Expr::Field { name, map_missing_to } => {
                let v = env.get(name)?.clone();
                match map_missing_to {
                    None => v,
                    Some(m) => match v {
                        Values::Num(a) => {
                            let m: f64 =
                                m.parse().map_err(|_| PmmlError::Input(format!("mapMissingTo '{m}' of {name} is not a number")))?;
                            Values::Num(a.iter().map(|x| Some(x.unwrap_or(m))).collect())
                        }
                        Values::Str(a) => Values::Str(a.iter().map(|x| Some(x.unwrap_or(m))).collect()),
                    },
                }
            }
            Expr::Constant(value, t) => match (value, t.is_numeric()) {
                (None, true) => Values::Num(Float64Array::new_null(n)),
                (None, false) => Values::Str(StringArray::new_null(n)),
                (Some(v), true) => {
                    let x: f64 = v.trim().parse().map_err(|_| PmmlError::Input(format!("constant '{v}' is not a number")))?;
                    Values::Num(Float64Array::from(vec![t.round(x); n]))
                }
                (Some(v), false) => Values::Str(StringArray::from(vec![v.as_str(); n])),
            },
            Expr::Apply { function, args, map_missing_to, default_value } => {
                let values = args.iter().map(|a| a.eval(env)).collect::<Result<Vec<_>>>()?;
                apply(*function, &values, n, *map_missing_to, *default_value)
            }
            Expr::NormContinuous { field, points, outliers, map_missing_to } => {
                let v = env.get(field)?;
                Values::Num((0..n).map(|i| v.num(i).map_or(*map_missing_to, |x| norm_continuous(x, points, *outliers))).collect())
            }
            Expr::NormDiscrete { field, value, map_missing_to } => {
                let v = env.get(field)?;
                Values::Num(
                    (0..n)
                        .map(|i| match v.text(i) {
                            None => *map_missing_to,
                            Some(t) => Some(if same_value(&t, value) { 1.0 } else { 0.0 }),
                        })
                        .collect(),
                )
            }
            Expr::MapValues { inputs, table, map_missing_to, default_value, numeric } => {
                let columns = inputs.iter().map(|f| env.get(f)).collect::<Result<Vec<_>>>()?;
                let looked_up: Vec<Option<String>> = (0..n)
                    .map(|i| {
                        let key: Option<Vec<String>> = columns.iter().map(|c| c.text(i)).collect();
                        match key {
                            None => map_missing_to.clone(),
                            Some(key) => table.get(&key).cloned().or_else(|| default_value.clone()),
                        }
                    })
                    .collect();
                if *numeric {
                    Values::Num(looked_up.iter().map(|v| v.as_deref().and_then(|s| s.trim().parse().ok())).collect())
                } else {
                    Values::Str(looked_up.iter().map(|v| v.as_deref()).collect())
                }
            }
        })
    }
}

/// Whether a value read as text equals a category written in the document: as text, or
/// as numbers (`1` and `1.0`).
pub fn same_value(value: &str, category: &str) -> bool {
    value == category || matches!((value.parse::<f64>(), category.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

fn norm_continuous(x: f64, points: &[(f64, f64)], outliers: Outliers) -> Option<f64> {
    let first = points[0];
    let last = points[points.len() - 1];
    if x < first.0 || x > last.0 {
        match outliers {
            Outliers::Missing => return None,
            Outliers::Extreme => return Some(if x < first.0 { first.1 } else { last.1 }),
            Outliers::Extrapolate => {}
        }
    }
    let i = points.windows(2).position(|w| x <= w[1].0).unwrap_or(points.len() - 2);
    let (a, b) = (points[i], points[i + 1]);
    Some(a.1 + (x - a.0) / (b.0 - a.0) * (b.1 - a.1))
}

fn apply(function: Function, args: &[Values], n: usize, map_missing_to: Option<f64>, default_value: Option<f64>) -> Values {
    use Function::*;
    let arg = |k: usize, i: usize| args.get(k).and_then(|a| a.num(i));
    let missing = |k: usize, i: usize| args.get(k).is_none_or(|a| a.is_missing(i));
    let bool_of = |b: bool| if b { 1.0 } else { 0.0 };
    let row = |i: usize| -> Option<f64> {
        // Functions that take missing values in.
        match function {
            IsMissing => return Some(bool_of(missing(0, i))),
            IsNotMissing => return Some(bool_of(!missing(0, i))),
            If => {
                return match arg(0, i) {
                    None => None,
                    Some(c) if c != 0.0 => arg(1, i),
                    Some(_) => arg(2, i),
                }
            }
            _ => {}
        }
        if (0..args.len()).any(|k| missing(k, i)) {
            return map_missing_to;
        }
        let compare = |f: fn(std::cmp::Ordering) -> bool| -> Option<f64> {
            match (args.first(), args.get(1)) {
                (Some(Values::Str(_)), _) | (_, Some(Values::Str(_))) => {
                    let (a, b) = (args[0].text(i)?, args[1].text(i)?);
                    match function {
                        Equal => Some(bool_of(same_value(&a, &b))),
                        NotEqual => Some(bool_of(!same_value(&a, &b))),
                        _ => Some(bool_of(f(a.cmp(&b)))),
                    }
                }
                _ => Some(bool_of(f(arg(0, i)?.partial_cmp(&arg(1, i)?)?))),
            }
        };
        let value = match function {
            Add => arg(0, i)? + arg(1, i)?,
            Sub => arg(0, i)? - arg(1, i)?,
            Mul => arg(0, i)? * arg(1, i)?,
            Div => {
                let d = arg(1, i)?;
                if d == 0.0 {
                    return default_value;
                }
                arg(0, i)? / d
            }
            Min => (0..args.len()).filter_map(|k| arg(k, i)).fold(f64::INFINITY, f64::min),
            Max => (0..args.len()).filter_map(|k| arg(k, i)).fold(f64::NEG_INFINITY, f64::max),
            Sum => (0..args.len()).filter_map(|k| arg(k, i)).sum(),
            Avg => (0..args.len()).filter_map(|k| arg(k, i)).sum::<f64>() / args.len().max(1) as f64,
            Log10 => arg(0, i)?.log10(),
            Ln => arg(0, i)?.ln(),
            Exp => arg(0, i)?.exp(),
            Sqrt => arg(0, i)?.sqrt(),
            Abs => arg(0, i)?.abs(),
            Pow => arg(0, i)?.powf(arg(1, i)?),
            Floor => arg(0, i)?.floor(),
            Ceil => arg(0, i)?.ceil(),
            Round => arg(0, i)?.round(),
            Threshold => bool_of(arg(0, i)? > arg(1, i)?),
            Equal => return compare(|o| o.is_eq()),
            NotEqual => return compare(|o| o.is_ne()),
            LessThan => return compare(|o| o.is_lt()),
            LessOrEqual => return compare(|o| o.is_le()),
            GreaterThan => return compare(|o| o.is_gt()),
            GreaterOrEqual => return compare(|o| o.is_ge()),
            And => bool_of((0..args.len()).all(|k| arg(k, i).is_some_and(|v| v != 0.0))),
            Or => bool_of((0..args.len()).any(|k| arg(k, i).is_some_and(|v| v != 0.0))),
            Not => bool_of(arg(0, i)? == 0.0),
            IsMissing | IsNotMissing | If => return None,
        };
        if value.is_finite() {
            Some(value)
        } else {
            default_value
        }
    };
    Values::Num((0..n).map(row).collect())
}
