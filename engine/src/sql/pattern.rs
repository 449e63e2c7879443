//! MATCH_RECOGNIZE's `PATTERN` (SQL:2016 row pattern recognition) as Eddy's own tree,
//! converted from sqlparser's AST: concatenation, alternation `|`, groups `( )`, and the
//! quantifiers `* + ? {n} {n,} {,m} {n,m}` in greedy and reluctant (`*?`, `+?`, `??`,
//! `{n,m}?`) forms. Flink supports neither alternation nor groups; Eddy does.
//!
//! sqlparser has no reluctant quantifiers: it reads `A*?` as `?` applied to `A*`. An
//! explicit `(A*)?` is a `?` applied to a *group*, so a `?` applied directly to a
//! repetition can only come from a reluctant quantifier, and is read as one here.
//!
//! Rejected with errors that name them: `PERMUTE`, exclusion `{- -}`, and the anchors
//! `^` and `$` (SQL:2016 features that neither Flink nor Eddy's matcher implement).
//! sqlparser cannot parse `{- -}` at all; [`super::clauses`] names it before sqlparser
//! reports a bare syntax error.

use std::fmt;

use sqlparser::ast::{MatchRecognizePattern, MatchRecognizeSymbol, RepetitionQuantifier};

use super::parser::normalize_ident;
use crate::error::SqlError;

/// A row pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// One row classified as this pattern variable (normalized name).
    Var(String),
    /// These, one after the other.
    Concat(Vec<Pattern>),
    /// The first that matches, in order of preference (SQL:2016: left before right).
    Alt(Vec<Pattern>),
    /// `inner` repeated `min..=max` times (`max` `None`: unbounded). Greedy prefers more
    /// repetitions, reluctant fewer.
    Repeat {
        /// The repeated pattern.
        inner: Box<Pattern>,
        /// Fewest repetitions.
        min: u32,
        /// Most repetitions; `None` for no limit.
        max: Option<u32>,
        /// Prefer more repetitions (greedy) or fewer (reluctant).
        greedy: bool,
    },
}

impl Pattern {
    /// Converts sqlparser's pattern.
    ///
    /// Errors: `PERMUTE`, `{- -}`, `^`, `$`, or `{n,m}` with n > m, each named.
    pub fn from_sql(pattern: &MatchRecognizePattern) -> Result<Pattern, SqlError> {
        use MatchRecognizePattern as P;
        Ok(match pattern {
            P::Symbol(MatchRecognizeSymbol::Named(ident)) => Pattern::Var(normalize_ident(ident)),
            P::Symbol(MatchRecognizeSymbol::Start) => return Err(unsupported("the anchor ^ (start of partition)")),
            P::Symbol(MatchRecognizeSymbol::End) => return Err(unsupported("the anchor $ (end of partition)")),
            P::Exclude(symbol) => return Err(unsupported(&format!("exclusion {{- {symbol} -}}"))),
            P::Permute(_) => return Err(unsupported("PERMUTE")),
            P::Concat(parts) => Pattern::Concat(parts.iter().map(Pattern::from_sql).collect::<Result<_, _>>()?),
            P::Alternation(parts) => Pattern::Alt(parts.iter().map(Pattern::from_sql).collect::<Result<_, _>>()?),
            P::Group(inner) => Pattern::from_sql(inner)?,
            // `x q ?` without parentheses: the reluctant form of q.
            P::Repetition(inner, RepetitionQuantifier::AtMostOne) if matches!(inner.as_ref(), P::Repetition(..)) => {
                let P::Repetition(base, quantifier) = inner.as_ref() else { return Err(unsupported("a nested quantifier")) };
                if matches!(base.as_ref(), P::Repetition(..)) {
                    return Err(unsupported(&format!("the quantifier sequence in {pattern}")));
                }
                repeat(Pattern::from_sql(base)?, quantifier, false)?
            }
            P::Repetition(inner, quantifier) => repeat(Pattern::from_sql(inner)?, quantifier, true)?,
        })
    }

    /// The pattern variables, in order of first appearance.
    pub fn variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Pattern::Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Pattern::Concat(parts) | Pattern::Alt(parts) => parts.iter().for_each(|p| p.collect(out)),
            Pattern::Repeat { inner, .. } => inner.collect(out),
        }
    }

    /// Whether a match can be as long as the input allows (an unbounded quantifier):
    /// without WITHIN, its partial matches are not bounded by time.
    pub fn is_unbounded(&self) -> bool {
        match self {
            Pattern::Var(_) => false,
            Pattern::Concat(parts) | Pattern::Alt(parts) => parts.iter().any(Pattern::is_unbounded),
            Pattern::Repeat { inner, max, .. } => max.is_none() || inner.is_unbounded(),
        }
    }
}

fn unsupported(what: &str) -> SqlError {
    SqlError::new(format!("{what} is not supported in PATTERN"))
        .hint("use concatenation, alternation |, groups ( ) and the quantifiers * + ? {n,m}, greedy or reluctant")
}

fn repeat(inner: Pattern, quantifier: &RepetitionQuantifier, greedy: bool) -> Result<Pattern, SqlError> {
    use RepetitionQuantifier as Q;
    let (min, max) = match quantifier {
        Q::ZeroOrMore => (0, None),
        Q::OneOrMore => (1, None),
        Q::AtMostOne => (0, Some(1)),
        Q::Exactly(n) => (*n, Some(*n)),
        Q::AtLeast(n) => (*n, None),
        Q::AtMost(m) => (0, Some(*m)),
        Q::Range(n, m) => {
            if n > m {
                return Err(SqlError::new(format!("quantifier {{{n},{m}}} has its bounds reversed")).hint(format!("write {{{m},{n}}}")));
            }
            (*n, Some(*m))
        }
    };
    if max == Some(0) {
        return Err(SqlError::new(format!("quantifier {quantifier} matches nothing")).hint("use at least {1}"));
    }
    Ok(Pattern::Repeat { inner: Box::new(inner), min, max, greedy })
}

impl fmt::Display for Pattern {
    /// SQL:2016 notation, fully parenthesized where it matters: `(A (N*?) B)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Var(v) => write!(f, "{v}"),
            Pattern::Concat(parts) => {
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                write!(f, "({})", parts.join(" "))
            }
            Pattern::Alt(parts) => {
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                write!(f, "({})", parts.join(" | "))
            }
            Pattern::Repeat { inner, min, max, greedy } => {
                let quantifier = match (min, max) {
                    (0, None) => "*".to_string(),
                    (1, None) => "+".to_string(),
                    (0, Some(1)) => "?".to_string(),
                    (n, None) => format!("{{{n},}}"),
                    (n, Some(m)) if n == m => format!("{{{n}}}"),
                    (n, Some(m)) => format!("{{{n},{m}}}"),
                };
                let reluctant = if *greedy { "" } else { "?" };
                match inner.as_ref() {
                    // A quantified quantifier needs its parentheses back: `(A*)?` is not `A*?`.
                    Pattern::Repeat { .. } => write!(f, "({inner}){quantifier}{reluctant}"),
                    _ => write!(f, "{inner}{quantifier}{reluctant}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::{SetExpr, TableFactor};
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn pattern(text: &str) -> Result<String, String> {
        let sql =
            format!("SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY k ORDER BY ts MEASURES A.x AS x PATTERN ({text}) DEFINE A AS A.x > 0)");
        let query = Parser::new(&GenericDialect {}).try_with_sql(&sql).and_then(|mut p| p.parse_query()).map_err(|e| e.to_string())?;
        let SetExpr::Select(select) = *query.body else { return Err("not a select".into()) };
        match &select.from[0].relation {
            TableFactor::MatchRecognize { pattern, .. } => Pattern::from_sql(pattern).map(|p| p.to_string()).map_err(|e| e.to_string()),
            _ => Err("no MATCH_RECOGNIZE".into()),
        }
    }

    #[test]
    fn quantifiers_greedy_and_reluctant() {
        assert_eq!(pattern("A N*? B").as_deref(), Ok("(a n*? b)"));
        assert_eq!(pattern("A N* B").as_deref(), Ok("(a n* b)"));
        assert_eq!(pattern("A+? B?? C{2,3}? D{2} E{1,}").as_deref(), Ok("(a+? b?? c{2,3}? d{2} e+)"));
        // An explicit group keeps `?` a quantifier of its own.
        assert_eq!(pattern("(A*)? B").as_deref(), Ok("((a*)? b)"));
        assert_eq!(pattern("(A | B C)+ D").as_deref(), Ok("((a | (b c))+ d)"));
    }

    #[test]
    fn rejected_constructs_are_named() {
        assert_eq!(
            pattern("PERMUTE(A, B)"),
            Err("PERMUTE is not supported in PATTERN; use concatenation, alternation |, groups ( ) and the quantifiers * + ? {n,m}, greedy or reluctant".into())
        );
        assert!(pattern("^ A").is_err_and(|e| e.starts_with("the anchor ^ (start of partition) is not supported")));
        assert!(pattern("A $").is_err_and(|e| e.starts_with("the anchor $ (end of partition) is not supported")));
        assert_eq!(pattern("A{3,2}"), Err("quantifier {3,2} has its bounds reversed; write {2,3}".into()));
    }

    #[test]
    fn variables_and_boundedness() -> Result<(), String> {
        let p = Pattern::Concat(vec![
            Pattern::Var("a".into()),
            Pattern::Repeat { inner: Box::new(Pattern::Var("n".into())), min: 0, max: None, greedy: false },
            Pattern::Var("b".into()),
        ]);
        assert_eq!(p.variables(), ["a", "n", "b"]);
        assert!(p.is_unbounded());
        assert!(!Pattern::Repeat { inner: Box::new(Pattern::Var("a".into())), min: 1, max: Some(3), greedy: true }.is_unbounded());
        Ok(())
    }
}
