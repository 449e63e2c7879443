//! A whole PMML document: its `DataDictionary`, `TransformationDictionary` and model,
//! compiled once ([`Pmml::parse`]) and scored a batch at a time ([`Pmml::evaluate`]).

use arrow::array::ArrayRef;

use crate::error::{PmmlError, Result};
use crate::expr::{child_expression, Expr, FieldType, Scope};
use crate::model::{Dictionary, Function, Model, Prediction, MODEL_ELEMENTS};
use crate::values::{Env, Values};
use crate::xml;

/// One `DataField` of the `DataDictionary`.
#[derive(Debug, Clone)]
pub struct DataField {
    /// The field's name.
    pub name: String,
    /// Its type.
    pub data_type: FieldType,
    /// `optype="categorical"` or `"ordinal"`.
    pub categorical: bool,
    /// The valid values of a categorical field, in the document's order.
    pub values: Vec<String>,
}

/// A compiled PMML document.
#[derive(Debug, Clone)]
pub struct Pmml {
    fields: Vec<DataField>,
    global: Vec<(String, Expr, FieldType)>,
    model: Model,
    /// The document's `version` attribute.
    pub version: String,
}

impl Pmml {
    /// Parses and compiles a PMML 4.x document.
    ///
    /// Errors: malformed XML; not PMML; a model kind, element, function or strategy Eddy
    /// does not evaluate ([`PmmlError::Unsupported`], naming it and its line); a field
    /// that is used but never defined.
    pub fn parse(text: &str) -> Result<Pmml> {
        let root = xml::parse(text)?;
        if root.name != "PMML" {
            return Err(root.invalid(format!("the root element is {}, not PMML", root.name)));
        }
        let version = root.attr("version").unwrap_or_default().to_string();
        if !version.starts_with('4') && !version.starts_with('3') {
            return Err(root.unsupported(format!("PMML version \"{version}\"")));
        }
        let dictionary = root.first("DataDictionary").ok_or_else(|| root.invalid("the document has no DataDictionary"))?;
        let mut fields = Vec::new();
        let mut scope = Scope::new();
        let mut dict = Dictionary::default();
        for f in dictionary.all("DataField") {
            let name = f.required("name")?.to_string();
            let data_type = FieldType::of(f)?;
            let categorical = matches!(f.attr("optype"), Some("categorical" | "ordinal"));
            let values: Vec<String> = f
                .all("Value")
                .filter(|v| v.attr("property").unwrap_or("valid") == "valid")
                .map(|v| v.required("value").map(str::to_string))
                .collect::<Result<_>>()?;
            scope.insert(name.clone(), data_type);
            dict.values.insert(name.clone(), if categorical { values.clone() } else { Vec::new() });
            fields.push(DataField { name, data_type, categorical, values });
        }
        let mut global = Vec::new();
        if let Some(t) = root.first("TransformationDictionary") {
            if let Some(d) = t.first("DefineFunction") {
                return Err(d.unsupported("DefineFunction"));
            }
            for derived in t.all("DerivedField") {
                let name = derived.required("name")?.to_string();
                let (expr, _) = Expr::compile(child_expression(derived)?, &scope)?;
                let t = FieldType::of(derived)?;
                scope.insert(name.clone(), t);
                global.push((name, expr, t));
            }
        }
        let model_element = root
            .children
            .iter()
            .find(|c| MODEL_ELEMENTS.contains(&c.name.as_str()))
            .ok_or_else(|| root.invalid("the document holds no model"))?;
        // The outermost model's target gives the classes.
        if let Some(target) = model_element
            .first("MiningSchema")
            .and_then(|s| s.all("MiningField").find(|m| matches!(m.attr("usageType"), Some("target" | "predicted"))))
            .and_then(|m| m.attr("name"))
        {
            dict.categories = dict.values.get(target).cloned().unwrap_or_default();
        }
        let model = Model::compile(model_element, &mut scope, &dict)?;
        Ok(Pmml { fields, global, model, version })
    }

    /// The model's input fields (its MiningSchema's active fields), in order.
    pub fn inputs(&self) -> Vec<&DataField> {
        let names = self.model.common().input_names();
        names.iter().filter_map(|n| self.fields.iter().find(|f| f.name == *n)).collect()
    }

    /// Whether the model is a classifier.
    pub fn is_classification(&self) -> bool {
        self.model.common().function == Function::Classification
    }

    /// A classifier's target categories, in the document's order.
    pub fn categories(&self) -> &[String] {
        &self.model.common().categories
    }

    /// The names of the model's OutputFields.
    pub fn output_names(&self) -> Vec<&str> {
        self.model.common().output_names()
    }

    /// Scores a batch: `inputs` are the values of the model's input fields by name, each
    /// an Arrow array of the batch's rows (numbers, booleans or strings; nulls are
    /// missing values). The result holds the predicted value, a classifier's
    /// probabilities, and the OutputFields, each a column of the batch's rows.
    ///
    /// Errors: an input field is not given, or its type cannot be a field's.
    pub fn evaluate(&self, inputs: &[(&str, ArrayRef)], rows: usize) -> Result<Prediction> {
        let mut env = Env::new(rows);
        for field in &self.fields {
            if let Some((_, array)) = inputs.iter().find(|(n, _)| *n == field.name) {
                let values = Values::from_array(&field.name, array)?;
                let values = match (values, field.data_type) {
                    (Values::Num(a), FieldType::String) => Values::Str(a.iter().map(|v| v.map(crate::values::format_number)).collect()),
                    (Values::Num(a), FieldType::Float) => Values::Num(a.iter().map(|v| v.map(|v| v as f32 as f64)).collect()),
                    (v, _) => v,
                };
                env.set(&field.name, values);
            }
        }
        for name in self.model.common().input_names() {
            if !env.has(name) {
                return Err(PmmlError::Input(format!("the model's input \"{name}\" is not given")));
            }
        }
        for (name, expr, t) in &self.global {
            let values = match (expr.eval(&env)?, t) {
                (Values::Num(a), FieldType::Float) => Values::Num(a.iter().map(|v| v.map(|v| v as f32 as f64)).collect()),
                (v, _) => v,
            };
            env.set(name, values);
        }
        self.model.evaluate(&env)
    }
}

#[cfg(test)]
impl Pmml {
    /// This document without its fast paths: every tree walks its arena row by row and
    /// every forest combines its trees' predictions (the reference the fast paths are
    /// tested against).
    pub(crate) fn general(mut self) -> Pmml {
        self.model.drop_fast_paths();
        self
    }

    /// Whether the document's model is scored as a forest.
    pub(crate) fn has_forest(&self) -> bool {
        matches!(&self.model, crate::model::Model::Mining(m) if m.has_forest())
    }
}
