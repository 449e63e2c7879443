//! `${VAR}` and `${VAR:-default}` substitution in SQL text, so `.sql` files never
//! hard-code hosts or passwords (`'url'='${EDDY_POSTGRES_URL}'`).

use crate::error::{Position, SqlError};

/// Replaces every `${NAME}` / `${NAME:-default}` in `sql` with `lookup(NAME)`, or the
/// default when the lookup returns `None`. `$$` stays as written.
///
/// Errors: an undefined variable without a default, or an unclosed `${`, with its position.
pub fn substitute(sql: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, SqlError> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut consumed = 0usize;
    while let Some(idx) = rest.find("${") {
        out.push_str(&rest[..idx]);
        let after = &rest[idx + 2..];
        let position = position_of(sql, consumed + idx);
        let Some(end) = after.find('}') else {
            return Err(SqlError::new("unclosed variable reference \"${\"").at(Some(position)).hint("write ${NAME}"));
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SqlError::new(format!("invalid variable name \"{name}\"")).at(Some(position)));
        }
        match lookup(name).or(default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(SqlError::new(format!("undefined variable ${{{name}}}"))
                    .at(Some(position))
                    .hint(format!("set the environment variable {name}, or write ${{{name}:-default}}")))
            }
        }
        let skip = idx + 2 + end + 1;
        consumed += skip;
        rest = &rest[skip..];
    }
    out.push_str(rest);
    Ok(out)
}

fn position_of(sql: &str, byte: usize) -> Position {
    let before = &sql[..byte.min(sql.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u64 + 1;
    Position { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_with_defaults() {
        let got = substitute("a='${A}', b='${B:-x}', c='${C:-}'", |n| (n == "A").then(|| "1".to_string()));
        assert_eq!(got.ok().as_deref(), Some("a='1', b='x', c=''"));
    }

    #[test]
    fn undefined_is_an_error() {
        let e = substitute("x\n  '${NOPE}'", |_| None).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("undefined variable ${NOPE} (line 2, column 4); set the environment variable NOPE, or write ${NOPE:-default}")
        );
    }
}
