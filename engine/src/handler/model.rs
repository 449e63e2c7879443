//! `CREATE MODEL`, `DROP MODEL`, `SHOW MODELS` and `DESCRIBE MODEL` (Flink 2.1's model
//! statements). A model's PMML file is read once (through the connector factory, so a
//! server's `--allow-path` applies), compiled, and checked against the declared INPUT
//! and OUTPUT columns; the command log records the file's SHA-256 with the statement,
//! so a restart scores with the same model or skips it with a warning naming the file.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use sha2::{Digest, Sha256};

use crate::catalog::{Model, OutputSource};
use crate::engine::Engine;
use crate::error::{EngineError, Result, SqlError};
use crate::result::{ModelInfo, StatementResult};
use crate::session::Session;
use crate::sql::ast::{ColumnSpec, CreateModel, Name};

/// The options of `CREATE MODEL ... WITH (...)`.
const MODEL_OPTIONS: &[&str] = &["provider", "path", "checksum"];

impl Engine {
    /// Creates (or with `OR REPLACE` replaces) a model.
    ///
    /// Errors: the name is taken (without `OR REPLACE` or `IF NOT EXISTS`), or a running
    /// query scores with the model being replaced; an unknown provider or option; the
    /// file cannot be read, is not a PMML document Eddy evaluates (the element and its
    /// line are named), or does not fit INPUT and OUTPUT; a `'checksum'` the file no
    /// longer has.
    pub(crate) async fn execute_create_model(&mut self, create: &CreateModel, session: &Session) -> Result<StatementResult> {
        let name = &create.name.value;
        if self.catalog.model(name).is_some() {
            if create.if_not_exists {
                return Ok(StatementResult::Noop(format!("model {name} already exists")));
            }
            if !create.or_replace {
                return Err(SqlError::new(format!("model \"{name}\" already exists"))
                    .at(create.name.position)
                    .hint("use CREATE OR REPLACE MODEL, or IF NOT EXISTS")
                    .into());
            }
            self.refuse_if_scoring(&create.name, "replace")?;
        }
        let model = self.load_model(create).await?;
        let logged = model.sql.clone();
        self.catalog.insert_model(Arc::new(model));
        self.log_command(&logged, None, session)?;
        Ok(StatementResult::ModelCreated { name: name.clone() })
    }

    /// Drops a model.
    ///
    /// Errors: it does not exist (without `IF EXISTS`), or a running query scores with it.
    pub(crate) fn execute_drop_model(&mut self, name: &Name, if_exists: bool, text: &str, session: &Session) -> Result<StatementResult> {
        if self.catalog.model(&name.value).is_none() {
            if if_exists {
                return Ok(StatementResult::Noop(format!("model {} does not exist", name.value)));
            }
            return Err(self.unknown_model(name).into());
        }
        self.refuse_if_scoring(name, "drop")?;
        self.catalog.remove_model(&name.value);
        self.log_command(text, None, session)?;
        Ok(StatementResult::ModelDropped { name: name.value.clone() })
    }

    /// `SHOW MODELS`.
    pub(crate) fn show_models(&self) -> StatementResult {
        StatementResult::Models(self.catalog.models().map(|m| model_info(m)).collect())
    }

    /// `DESCRIBE MODEL name`.
    ///
    /// Errors: no such model.
    pub(crate) fn execute_describe_model(&self, name: &Name) -> Result<StatementResult> {
        match self.catalog.model(&name.value) {
            Some(m) => Ok(StatementResult::ModelDescription(Box::new(model_info(m)))),
            None => Err(self.unknown_model(name).into()),
        }
    }

    fn unknown_model(&self, name: &Name) -> SqlError {
        let hint = match crate::error::closest(&name.value, self.catalog.models().map(|m| m.name.as_str())) {
            Some(c) => format!("did you mean {c}?"),
            None => "SHOW MODELS lists the models".to_string(),
        };
        SqlError::new(format!("unknown model \"{}\"", name.value)).at(name.position).hint(hint)
    }

    fn refuse_if_scoring(&self, name: &Name, verb: &str) -> Result<()> {
        let users: Vec<&str> =
            self.queries.iter().filter(|q| q.plan.models.iter().any(|m| m == &name.value)).map(|q| q.plan.id.as_str()).collect();
        if users.is_empty() {
            return Ok(());
        }
        Err(SqlError::new(format!("cannot {verb} model \"{}\": queries score with it: {}", name.value, users.join(", ")))
            .at(name.position)
            .hint(format!("terminate them first (TERMINATE {})", users[0]))
            .into())
    }

    /// Reads (through the connector factory: a server's `--allow-path` applies),
    /// compiles and checks the model of `create`.
    ///
    /// Errors: see [`Engine::execute_create_model`].
    pub(crate) async fn load_model(&self, create: &CreateModel) -> Result<Model> {
        let path = model_path(create)?;
        let bytes = match &self.factory {
            Some(f) => f.read_file(&path).await?,
            None => std::fs::read(&path).map_err(|e| EngineError::Io { what: "model file", path: path.clone().into(), source: e })?,
        };
        compile_model(create, &bytes)
    }
}

/// The file a `CREATE MODEL` names (a `file://` URI's path).
///
/// Errors: an unknown option, a provider other than PMML, no path.
pub(crate) fn model_path(create: &CreateModel) -> Result<String> {
    let option = |key: &str| create.options.iter().find(|o| o.key == key);
    if let Some(o) = create.options.iter().find(|o| !MODEL_OPTIONS.contains(&o.key.as_str())) {
        let hint = match crate::error::closest(&o.key, MODEL_OPTIONS.iter().copied()) {
            Some(c) => format!("did you mean '{c}'?"),
            None => "a model takes 'provider' and 'path'".to_string(),
        };
        return Err(SqlError::new(format!("unknown WITH option '{}' for a model", o.key)).at(o.key_position).hint(hint).into());
    }
    match option("provider") {
        Some(o) if o.value.eq_ignore_ascii_case("pmml") => {}
        Some(o) => {
            return Err(SqlError::new(format!("unknown model provider '{}'", o.value))
                .at(o.value_position)
                .hint("Eddy evaluates PMML models: 'provider' = 'pmml'")
                .into())
        }
        None => {
            return Err(SqlError::new(format!("model \"{}\" needs a provider", create.name.value))
                .at(create.name.position)
                .hint("add 'provider' = 'pmml'")
                .into())
        }
    }
    let path_option = option("path").filter(|o| !o.value.is_empty()).ok_or_else(|| {
        SqlError::new(format!("model \"{}\" needs a path", create.name.value))
            .at(create.name.position)
            .hint("add 'path' = 'models/card_fraud.pmml'")
    })?;
    Ok(path_option.value.strip_prefix("file://").unwrap_or(&path_option.value).to_string())
}

/// Compiles and checks the model of `create` from its file's `bytes`.
///
/// Errors: the file is not a PMML document Eddy evaluates (the element and its line are
/// named), or does not fit INPUT and OUTPUT; a `'checksum'` the file does not have.
pub(crate) fn compile_model(create: &CreateModel, bytes: &[u8]) -> Result<Model> {
    let path = model_path(create)?;
    let option = |key: &str| create.options.iter().find(|o| o.key == key);
    let position = option("path").and_then(|o| o.value_position);
    let checksum: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    if let Some(o) = option("checksum") {
        if !o.value.eq_ignore_ascii_case(&checksum) {
            return Err(SqlError::new(format!("the model file {path} changed since model \"{}\" was created", create.name.value))
                .at(o.value_position)
                .hint("its SHA-256 was recorded when the model was created; put the file back, or CREATE OR REPLACE MODEL to score with the new one")
                .into());
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SqlError::new(format!("{path} is not UTF-8 text")).at(position))?;
    let pmml = eddy_pmml::Pmml::parse(text).map_err(|e| SqlError::new(located(&e, &path)).at(position))?;
    let inputs = check_inputs(&create.inputs, &pmml)?;
    let outputs = check_outputs(&create.outputs, &pmml)?;
    let kind = if pmml.is_classification() { "classification" } else { "regression" }.to_string();
    let written = option("path").map(|o| o.value.clone()).unwrap_or_default();
    let sql = logged_statement(create, "pmml", &written, &checksum);
    Ok(Model {
        name: create.name.value.clone(),
        inputs,
        outputs,
        provider: "pmml".into(),
        path: written,
        checksum,
        pmml: Arc::new(pmml),
        kind,
        sql,
    })
}

/// A load error with the file's path in it: `NeuralNetwork is not supported
/// (models/x.pmml:12)`.
fn located(e: &eddy_pmml::PmmlError, path: &str) -> String {
    use eddy_pmml::PmmlError;
    match e {
        PmmlError::Unsupported { what, line } => format!("{what} is not supported ({path}:{line})"),
        PmmlError::Invalid { message, line } => format!("{message} ({path}:{line})"),
        PmmlError::Xml { line, message } => format!("{path}:{line} is not well-formed XML: {message}"),
        other => format!("{path}: {other}"),
    }
}

fn column_schema(columns: &[ColumnSpec]) -> Result<Vec<Field>> {
    columns
        .iter()
        .map(|c| {
            let t = c
                .data_type
                .as_ref()
                .ok_or_else(|| SqlError::new(format!("column \"{}\" has no type", c.name.value)).at(c.name.position))?;
            Ok(Field::new(&c.name.value, crate::sql::types::arrow_type(t, &c.name.value, c.type_position)?, true))
        })
        .collect()
}

/// The INPUT columns: each must be an input field of the document (by name, without
/// regard to case) of a fitting type, and together they must cover its inputs.
fn check_inputs(columns: &[ColumnSpec], pmml: &eddy_pmml::Pmml) -> Result<Arc<Schema>> {
    let fields = column_schema(columns)?;
    let wanted = pmml.inputs();
    for (column, field) in columns.iter().zip(&fields) {
        let Some(input) = wanted.iter().find(|f| f.name.eq_ignore_ascii_case(field.name())) else {
            let names: Vec<&str> = wanted.iter().map(|f| f.name.as_str()).collect();
            return Err(SqlError::new(format!("INPUT column \"{}\" is not an input of the model", field.name()))
                .at(column.name.position)
                .hint(format!("the model's inputs are: {}", names.join(", ")))
                .into());
        };
        let text = matches!(field.data_type(), DataType::Utf8);
        let numeric = field.data_type().is_numeric() || matches!(field.data_type(), DataType::Boolean);
        let fits =
            if input.data_type.is_numeric() && !input.categorical { numeric } else { text || (numeric && input.data_type.is_numeric()) };
        if !fits {
            return Err(SqlError::new(format!(
                "INPUT column \"{}\" is {}, but the model's field \"{}\" is {}",
                field.name(),
                crate::sql::types::sql_name(field.data_type()),
                input.name,
                if input.data_type.is_numeric() { "a number" } else { "text" }
            ))
            .at(column.type_position)
            .into());
        }
    }
    if let Some(missing) = wanted.iter().find(|f| !fields.iter().any(|c| c.name().eq_ignore_ascii_case(&f.name))) {
        return Err(SqlError::new(format!("the model also needs the input \"{}\"", missing.name))
            .hint("add it to INPUT (...), in the order ML_PREDICT's DESCRIPTOR gives the columns")
            .into());
    }
    // Named as the document names them, so scoring finds them.
    let fields: Vec<Field> = fields
        .into_iter()
        .map(|f| {
            let name = wanted.iter().find(|w| w.name.eq_ignore_ascii_case(f.name())).map(|w| w.name.clone()).unwrap_or_default();
            f.with_name(name)
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// The OUTPUT columns: each must have a type its source can fill.
fn check_outputs(columns: &[ColumnSpec], pmml: &eddy_pmml::Pmml) -> Result<Arc<Schema>> {
    let fields = column_schema(columns)?;
    if fields.is_empty() {
        return Err(SqlError::new("a model needs an OUTPUT column").hint("e.g. OUTPUT (probability DOUBLE)").into());
    }
    for (column, field) in columns.iter().zip(&fields) {
        let numeric = field.data_type().is_numeric();
        let fits = match Model::output_source(pmml, field.name(), field.data_type()) {
            OutputSource::Field(_) => true,
            OutputSource::Probability(_) => numeric,
            OutputSource::Predicted => numeric || matches!(field.data_type(), DataType::Utf8) && pmml.is_classification(),
        };
        if !fits {
            return Err(SqlError::new(format!(
                "OUTPUT column \"{}\" cannot be {}: the model is a {}",
                field.name(),
                crate::sql::types::sql_name(field.data_type()),
                if pmml.is_classification() { "classifier (DOUBLE: the probability; VARCHAR: the class)" } else { "regression (a number)" }
            ))
            .at(column.type_position)
            .into());
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The statement as the command log records it: with the file's checksum.
fn logged_statement(create: &CreateModel, provider: &str, path: &str, checksum: &str) -> String {
    let columns = |cs: &[ColumnSpec]| -> String {
        cs.iter()
            .map(|c| format!("{} {}", quoted(&c.name.value), c.data_type.as_ref().map(|t| t.to_string()).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let quote = |v: &str| v.replace('\'', "''");
    format!(
        "CREATE OR REPLACE MODEL {} INPUT ({}) OUTPUT ({}) WITH ('provider' = '{}', 'path' = '{}', 'checksum' = '{}')",
        quoted(&create.name.value),
        columns(&create.inputs),
        columns(&create.outputs),
        quote(provider),
        quote(path),
        checksum
    )
}

fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn model_info(m: &Model) -> ModelInfo {
    let columns = |s: &Schema| s.fields().iter().map(|f| (f.name().clone(), crate::sql::types::sql_name(f.data_type()))).collect();
    ModelInfo {
        name: m.name.clone(),
        provider: m.provider.clone(),
        path: m.path.clone(),
        kind: m.kind.clone(),
        inputs: columns(&m.inputs),
        outputs: columns(&m.outputs),
        checksum: m.checksum.clone(),
    }
}
