//! `ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b, ...))` (Flink 2.1's table function):
//! the rows of `t` with the model's OUTPUT columns appended. The query is rewritten to
//! read `t`, and every reference to an OUTPUT column (and `*`) becomes a call of the
//! model's scoring function over the DESCRIPTOR columns ([`ModelUdf`]), which scores a
//! whole batch at once with the compiled PMML document. The DESCRIPTOR columns feed the
//! model's INPUT columns in order.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, TableFactor,
    VisitMut,
};

use super::event_time::expr_position;
use super::parser::normalize_ident;
use crate::catalog::{Catalog, Model, OutputSource};
use crate::error::SqlError;

/// The prefix of the scoring functions' names: `ml_predict:<model>:<output index>`.
pub const FUNCTION_PREFIX: &str = "ml_predict:";

/// `query` reading the table of its `ML_PREDICT` with the model's outputs as function
/// calls, and the model's name; `None` when the query has no `ML_PREDICT`.
///
/// Errors: an unknown table or model, arguments that are not `TABLE t, MODEL m,
/// DESCRIPTOR(...)`, a DESCRIPTOR of another length than the model's INPUT.
pub fn rewrite(query: &Query, catalog: &Catalog) -> Result<Option<(Query, String)>, SqlError> {
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(None) };
    let Some(from) = select.from.first_mut() else { return Ok(None) };
    // `FROM ML_PREDICT(...)` (a table with arguments) or `FROM TABLE(ML_PREDICT(...))`.
    let hint = "write ML_PREDICT(TABLE stream, MODEL model, DESCRIPTOR(col, ...))";
    let (function_args, alias, position): (Vec<FunctionArg>, _, _) = match &from.relation {
        TableFactor::Table { name, args: Some(args), alias, .. } if name.to_string().eq_ignore_ascii_case("ML_PREDICT") => {
            let position = name.0.first().and_then(|p| p.as_ident()).and_then(|i| crate::error::Position::from_location(i.span.start));
            (args.args.clone(), alias.clone(), position)
        }
        TableFactor::TableFunction { expr: Expr::Function(f), alias } if f.name.to_string().eq_ignore_ascii_case("ML_PREDICT") => {
            let position = expr_position(&Expr::Function(f.clone()));
            let FunctionArguments::List(list) = &f.args else {
                return Err(SqlError::new("ML_PREDICT needs arguments").at(position).hint(hint));
            };
            (list.args.clone(), alias.clone(), position)
        }
        _ => return Ok(None),
    };
    let alias = &alias;
    let args: Vec<&Expr> = function_args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(SqlError::new(format!("unsupported argument {other} of ML_PREDICT")).at(position).hint(hint)),
        })
        .collect::<Result<_, _>>()?;
    let (table, model, descriptor) = match args.as_slice() {
        [Expr::Identifier(t), Expr::Identifier(m), d] => (t, m, d),
        [_, _, _, config] => {
            return Err(SqlError::new("ML_PREDICT's config map is not supported")
                .at(expr_position(config))
                .hint("remove the fourth argument"))
        }
        _ => return Err(SqlError::new("wrong arguments for ML_PREDICT").at(position).hint(hint)),
    };
    let table_name = normalize_ident(table);
    if catalog.get(&table_name).is_none() {
        return Err(SqlError::new(format!("unknown stream or table \"{table_name}\"")).at(expr_position(&Expr::Identifier(table.clone()))));
    }
    let model_name = normalize_ident(model);
    let Some(model) = catalog.model(&model_name) else {
        return Err(SqlError::new(format!("unknown model \"{model_name}\""))
            .at(expr_position(&Expr::Identifier(model.clone())))
            .hint("CREATE MODEL declares one; SHOW MODELS lists them"));
    };
    let columns: Vec<Expr> = match descriptor {
        Expr::Function(d) if d.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => match &d.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_)))) => Ok(e.clone()),
                    other => Err(SqlError::new(format!("DESCRIPTOR takes column names, found {other}")).at(expr_position(descriptor))),
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        },
        other => {
            return Err(SqlError::new(format!("the third argument of ML_PREDICT must be DESCRIPTOR(columns), found {other}"))
                .at(expr_position(other))
                .hint(hint))
        }
    };
    if columns.len() != model.inputs.fields().len() {
        let names: Vec<&str> = model.inputs.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(SqlError::new(format!(
            "DESCRIPTOR names {} column(s), but model \"{}\" takes {} input(s): {}",
            columns.len(),
            model.name,
            names.len(),
            names.join(", ")
        ))
        .at(expr_position(descriptor))
        .hint("name one column per INPUT column, in the model's order"));
    }
    let alias_name = alias.as_ref().map(|a| normalize_ident(&a.name));
    let mut relation = super::window::table_factor(&table_name)?;
    if let (TableFactor::Table { alias: a, .. }, Some(alias)) = (&mut relation, alias) {
        *a = Some(alias.clone());
    }
    from.relation = relation;
    let outputs: Vec<(String, Expr)> =
        model.outputs.fields().iter().enumerate().map(|(k, f)| (f.name().clone(), call(&model.name, k, &columns))).collect();
    // `*` gains the outputs; a reference to an output is its call.
    let mut projection = Vec::with_capacity(select.projection.len() + outputs.len());
    for item in std::mem::take(&mut select.projection) {
        let wildcard = matches!(item, SelectItem::Wildcard(_))
            || matches!(&item, SelectItem::QualifiedWildcard(sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(n), _)
                if alias_name.as_deref() == Some(n.to_string().to_lowercase().as_str()));
        projection.push(item);
        if wildcard {
            for (name, call) in &outputs {
                projection.push(SelectItem::ExprWithAlias { expr: call.clone(), alias: Ident::with_quote('"', name.clone()) });
            }
        }
    }
    select.projection = projection;
    let mut rewriter = super::window::RewriteExprs(|e: &mut Expr| {
        let name = match e {
            Expr::Identifier(i) => Some(normalize_ident(i)),
            Expr::CompoundIdentifier(parts) if parts.len() == 2 && alias_name.as_deref() == Some(normalize_ident(&parts[0]).as_str()) => {
                Some(normalize_ident(&parts[1]))
            }
            _ => None,
        };
        if let Some((_, call)) = name.and_then(|n| outputs.iter().find(|(o, _)| *o == n)) {
            *e = call.clone();
        }
    });
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in select.projection.iter_mut() {
            // A selected output column keeps its name (`probability`, `m.probability`).
            let named = match item {
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(normalize_ident(i)),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))
                    if parts.len() == 2 && alias_name.as_deref() == Some(normalize_ident(&parts[0]).as_str()) =>
                {
                    Some(normalize_ident(&parts[1]))
                }
                _ => None,
            };
            if let Some((name, call)) = named.and_then(|n| outputs.iter().find(|(o, _)| *o == n)) {
                *item = SelectItem::ExprWithAlias { expr: call.clone(), alias: Ident::with_quote('"', name.clone()) };
                continue;
            }
            let _ = item.visit(&mut rewriter);
        }
        if let Some(selection) = select.selection.as_mut() {
            let _ = selection.visit(&mut rewriter);
        }
        let _ = select.group_by.visit(&mut rewriter);
        if let Some(having) = select.having.as_mut() {
            let _ = having.visit(&mut rewriter);
        }
    }
    Ok(Some((query, model_name)))
}

/// The call of model `model`'s scoring function for output `k` over `columns`.
fn call(model: &str, k: usize, columns: &[Expr]) -> Expr {
    let name = format!("{FUNCTION_PREFIX}{model}:{k}");
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: columns.iter().map(|c| FunctionArg::Unnamed(FunctionArgExpr::Expr(c.clone()))).collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// The scoring function of one OUTPUT column of a model: its arguments are the INPUT
/// columns (in order, cast to the INPUT types), its result the OUTPUT column's values
/// for the whole batch.
#[derive(Debug)]
pub struct ModelUdf {
    name: String,
    model: Arc<Model>,
    output: usize,
    signature: Signature,
}

impl PartialEq for ModelUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.model, &other.model)
    }
}

impl Eq for ModelUdf {}

impl std::hash::Hash for ModelUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ModelUdf {
    /// The function called `name` (`ml_predict:<model>:<k>`), when `catalog` has the model.
    pub fn lookup(name: &str, catalog: &Catalog) -> Option<ModelUdf> {
        let rest = name.strip_prefix(FUNCTION_PREFIX)?;
        let (model, k) = rest.rsplit_once(':')?;
        let model = catalog.model(model)?.clone();
        let output: usize = k.parse().ok()?;
        if output >= model.outputs.fields().len() {
            return None;
        }
        let types: Vec<DataType> = model.inputs.fields().iter().map(|f| f.data_type().clone()).collect();
        Some(ModelUdf { name: name.to_string(), model, output, signature: Signature::exact(types, Volatility::Immutable) })
    }
}

impl ScalarUDFImpl for ModelUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.model.outputs.field(self.output).data_type().clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let inputs: Vec<(&str, ArrayRef)> = self.model.inputs.fields().iter().zip(arrays).map(|(f, a)| (f.name().as_str(), a)).collect();
        let prediction = match self.model.pmml.evaluate(&inputs, rows) {
            Ok(p) => p,
            Err(e) => return exec_err!("model {} cannot score this batch: {e}", self.model.name),
        };
        let field: &Field = self.model.outputs.field(self.output);
        let values: ArrayRef = match Model::output_source(&self.model.pmml, field.name(), field.data_type()) {
            OutputSource::Field(name) => match prediction.outputs.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => v.to_array(),
                None => return exec_err!("model {} gave no output {name}", self.model.name),
            },
            OutputSource::Probability(category) => match prediction.probability(&category) {
                Some(p) => Arc::new(p.clone()),
                None => return exec_err!("model {} gave no probability of {category}", self.model.name),
            },
            OutputSource::Predicted => prediction.predicted.to_array(),
        };
        let values = if values.data_type() == field.data_type() { values } else { arrow::compute::cast(&values, field.data_type())? };
        Ok(ColumnarValue::Array(values))
    }
}
