//! Cuts the streaming clauses sqlparser cannot parse out of one statement's tokens,
//! before sqlparser sees them (the approach of `../shared/BUILDING.md` §4):
//!
//! - ksqlDB `WINDOW TUMBLING (SIZE 3 SECONDS [, RETENTION ...] [, GRACE PERIOD 10 SECONDS])`,
//!   `WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS [, ...])`, `WINDOW SESSION (5 MINUTES [, ...])`;
//! - `EMIT CHANGES` / `EMIT FINAL`;
//! - the `TABLE` keyword of Flink's window table functions, `TUMBLE(TABLE t, ...)`, and
//!   `SESSION(TABLE t PARTITION BY k, ...)`'s partition list;
//! - Flink's `WITHIN INTERVAL '5' MINUTE` after a MATCH_RECOGNIZE `PATTERN (...)`
//!   (`WITHIN GROUP` of ordered-set aggregates is left alone);
//! - Flink's `FOR SYSTEM_TIME AS OF o.proc_time` after the table of a lookup join
//!   (sqlparser reads it in the BigQuery and MsSql dialects only).
//!
//! The remaining tokens keep their positions, so sqlparser's errors still point at the
//! user's text.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::{Emit, KsqlWindow, Name, StreamClauses, WindowKind};
use crate::error::{Position, SqlError};

/// Returns `tokens` without the streaming clauses, and the clauses.
///
/// Errors: a malformed `WINDOW` clause (unknown unit, missing `SIZE`, ...), or a clause
/// given twice.
pub fn extract(tokens: Vec<TokenWithSpan>) -> Result<(Vec<TokenWithSpan>, StreamClauses), SqlError> {
    let mut clauses = StreamClauses::default();
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut cursor = Cursor { tokens: &tokens, at: 0 };
    let mut depth = 0usize;
    while cursor.at < tokens.len() {
        let token = &tokens[cursor.at];
        match &token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if token.token == Token::LBrace && cursor.next_significant(cursor.at + 1).is_some_and(|i| tokens[i].token == Token::Minus) {
            return Err(SqlError::new("exclusion {- -} is not supported in PATTERN")
                .at(Position::from_location(token.span.start))
                .hint("match the rows and leave them out of the MEASURES instead"));
        }
        if depth > 0 && cursor.word_at(cursor.at).as_deref() == Some("SUBSET") {
            let name = cursor.next_significant(cursor.at + 1);
            let eq = name.and_then(|i| cursor.next_significant(i + 1));
            if eq.is_some_and(|i| tokens[i].token == Token::Eq) {
                return Err(SqlError::new("SUBSET (union variables) is not supported in MATCH_RECOGNIZE")
                    .at(Position::from_location(token.span.start))
                    .hint("refer to each variable on its own, e.g. SUM(A.x) + SUM(B.x) instead of SUM(AB.x)"));
            }
        }
        if cursor.word_at(cursor.at).as_deref() == Some("WITHIN") {
            let next = cursor.next_significant(cursor.at + 1);
            if next.and_then(|i| cursor.word_at(i)).as_deref() == Some("INTERVAL") {
                let position = Position::from_location(token.span.start);
                if clauses.within.is_some() {
                    return Err(SqlError::new("WITHIN is given twice").at(position));
                }
                cursor.at = next.map(|i| i + 1).unwrap_or(tokens.len());
                clauses.within = Some((parse_within(&mut cursor)?, position));
                continue;
            }
        }
        // ksqlDB's stream-stream join bound: `WITHIN 1 HOUR`, `WITHIN (1 HOUR, 2 HOURS)`,
        // each optionally followed by `GRACE PERIOD 10 MINUTES`.
        if depth == 0 && cursor.word_at(cursor.at).as_deref() == Some("WITHIN") {
            let next = cursor.next_significant(cursor.at + 1);
            if next.is_some_and(|i| matches!(tokens[i].token, Token::Number(..) | Token::LParen)) {
                let position = Position::from_location(token.span.start);
                if clauses.join_within.is_some() {
                    return Err(SqlError::new("WITHIN is given twice").at(position));
                }
                cursor.at = next.unwrap_or(tokens.len());
                clauses.join_within = Some((parse_join_within(&mut cursor)?, position));
                continue;
            }
        }
        if cursor.word_at(cursor.at).as_deref() == Some("FOR") {
            // `FOR SYSTEM_TIME AS OF`: the significant tokens after FOR.
            let mut at = cursor.at;
            let mut last = cursor.at;
            let mut keywords = Vec::with_capacity(3);
            for _ in 0..3 {
                match cursor.next_significant(at + 1) {
                    Some(i) => {
                        keywords.push(cursor.word_at(i));
                        at = i;
                        last = i;
                    }
                    None => break,
                }
            }
            if keywords == [Some("SYSTEM_TIME".to_string()), Some("AS".to_string()), Some("OF".to_string())] {
                let position = Position::from_location(token.span.start);
                if clauses.system_time.is_some() {
                    return Err(SqlError::new("a query has one FOR SYSTEM_TIME AS OF (one lookup join)")
                        .at(position)
                        .hint("enrich in two steps: write the first join's rows to a stream, and join that"));
                }
                cursor.at = last + 1;
                clauses.system_time = Some((parse_time_column(&mut cursor)?, position));
                continue;
            }
        }
        if depth == 0 && cursor.word_at(cursor.at).as_deref() == Some("WINDOW") {
            let next = cursor.next_significant(cursor.at + 1);
            if let Some(kind) = next.and_then(|i| cursor.word_at(i)).filter(|w| matches!(w.as_str(), "TUMBLING" | "HOPPING" | "SESSION")) {
                let position = Position::from_location(token.span.start);
                if clauses.window.is_some() {
                    return Err(SqlError::new("a query has one WINDOW clause").at(position));
                }
                cursor.at = next.map(|i| i + 1).unwrap_or(tokens.len());
                clauses.window = Some(parse_window(&mut cursor, &kind, position)?);
                continue;
            }
        }
        if depth == 0 && cursor.word_at(cursor.at).as_deref() == Some("EMIT") {
            let next = cursor.next_significant(cursor.at + 1);
            let emit = match next.and_then(|i| cursor.word_at(i)).as_deref() {
                Some("CHANGES") => Some(Emit::Changes),
                Some("FINAL") => Some(Emit::Final),
                _ => None,
            };
            if let (Some(emit), Some(next)) = (emit, next) {
                let position = Position::from_location(token.span.start);
                if clauses.emit.is_some() {
                    return Err(SqlError::new("EMIT is given twice").at(position));
                }
                clauses.emit = Some((emit, position));
                cursor.at = next + 1;
                continue;
            }
        }
        // Table functions over `TABLE t` (`TUMBLE(TABLE t, ...)`, `ML_PREDICT(TABLE t, MODEL
        // m, ...)`): drop `TABLE` (and `MODEL`) so sqlparser sees `TUMBLE(t, ...)`.
        if let Some(function) =
            cursor.word_at(cursor.at).filter(|w| matches!(w.as_str(), "TUMBLE" | "HOP" | "SESSION" | "CUMULATE" | "ML_PREDICT"))
        {
            let paren = cursor.next_significant(cursor.at + 1).filter(|&i| tokens[i].token == Token::LParen);
            let table = paren.and_then(|i| cursor.next_significant(i + 1)).filter(|&i| cursor.word_at(i).as_deref() == Some("TABLE"));
            if let (Some(paren), Some(table)) = (paren, table) {
                out.extend_from_slice(&tokens[cursor.at..=paren]);
                depth += 1;
                cursor.at = table + 1;
                if function == "ML_PREDICT" {
                    // The table name and the comma after it, then `MODEL`.
                    let name = cursor.next_significant(cursor.at);
                    let comma = name.and_then(|n| cursor.next_significant(n + 1)).filter(|&c| tokens[c].token == Token::Comma);
                    let model =
                        comma.and_then(|c| cursor.next_significant(c + 1)).filter(|&m| cursor.word_at(m).as_deref() == Some("MODEL"));
                    if let (Some(comma), Some(model)) = (comma, model) {
                        out.extend_from_slice(&tokens[cursor.at..=comma]);
                        cursor.at = model + 1;
                    }
                }
                if function == "SESSION" {
                    // Copy the table name, then cut `PARTITION BY a, b` up to DESCRIPTOR.
                    if let Some(name) = cursor.next_significant(cursor.at) {
                        out.extend_from_slice(&tokens[cursor.at..=name]);
                        cursor.at = name + 1;
                        clauses.session_partition_by = parse_session_partition(&mut cursor)?;
                    }
                }
                continue;
            }
        }
        out.push(token.clone());
        cursor.at += 1;
    }
    Ok((out, clauses))
}

struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    at: usize,
}

impl Cursor<'_> {
    fn word_at(&self, i: usize) -> Option<String> {
        match self.tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
            _ => None,
        }
    }

    fn next_significant(&self, from: usize) -> Option<usize> {
        (from..self.tokens.len()).find(|&i| !matches!(self.tokens[i].token, Token::Whitespace(_)))
    }

    /// Moves to the next significant token and returns it.
    fn advance(&mut self) -> Option<&TokenWithSpan> {
        let i = self.next_significant(self.at)?;
        self.at = i + 1;
        self.tokens.get(i)
    }

    fn peek(&self) -> Option<&TokenWithSpan> {
        self.next_significant(self.at).and_then(|i| self.tokens.get(i))
    }

    fn position(&self) -> Option<Position> {
        self.peek().and_then(|t| Position::from_location(t.span.start))
    }

    fn expect_word(&mut self, word: &str, context: &str) -> Result<(), SqlError> {
        let position = self.position();
        match self.advance().map(|t| t.token.clone()) {
            Some(Token::Word(w)) if w.value.eq_ignore_ascii_case(word) => Ok(()),
            other => Err(found(&format!("expected {word}"), other).at(position).hint(context.to_string())),
        }
    }

    fn expect(&mut self, token: Token, context: &str) -> Result<(), SqlError> {
        let position = self.position();
        match self.advance().map(|t| t.token.clone()) {
            Some(t) if t == token => Ok(()),
            other => Err(found(&format!("expected {token}"), other).at(position).hint(context.to_string())),
        }
    }

    /// `n UNIT` as milliseconds.
    fn duration(&mut self, context: &str) -> Result<i64, SqlError> {
        let position = self.position();
        let n = match self.advance().map(|t| t.token.clone()) {
            Some(Token::Number(n, _)) => n.parse::<i64>().map_err(|_| {
                SqlError::new(format!("window durations are whole numbers, found {n}")).at(position).hint(context.to_string())
            })?,
            other => return Err(found("expected a duration such as 3 SECONDS", other).at(position).hint(context.to_string())),
        };
        let unit_position = self.position();
        let unit = match self.advance().map(|t| t.token.clone()) {
            Some(Token::Word(w)) => w.value.to_uppercase(),
            other => return Err(found("expected a time unit", other).at(unit_position).hint(UNITS_HINT)),
        };
        let ms = unit_ms(&unit).ok_or_else(|| SqlError::new(format!("unknown time unit {unit}")).at(unit_position).hint(UNITS_HINT))?;
        if n <= 0 && !context.contains("GRACE") {
            return Err(SqlError::new(format!("a window duration must be positive, found {n} {unit}")).at(position));
        }
        n.checked_mul(ms).ok_or_else(|| SqlError::new("window duration is too large").at(position))
    }
}

const UNITS_HINT: &str = "use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS";

/// Milliseconds in one `unit` (singular or plural, any case).
pub fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit.to_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return None,
    })
}

fn found(expected: &str, token: Option<Token>) -> SqlError {
    match token {
        Some(t) => SqlError::new(format!("syntax error: {expected}, found {t}")),
        None => SqlError::new(format!("syntax error: {expected}, found end of input")),
    }
}

fn parse_window(cursor: &mut Cursor<'_>, kind: &str, position: Option<Position>) -> Result<KsqlWindow, SqlError> {
    let example = match kind {
        "TUMBLING" => "write WINDOW TUMBLING (SIZE 3 SECONDS [, GRACE PERIOD 10 SECONDS])",
        "HOPPING" => "write WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS [, GRACE PERIOD 10 SECONDS])",
        _ => "write WINDOW SESSION (5 MINUTES [, GRACE PERIOD 10 SECONDS])",
    };
    cursor.expect(Token::LParen, example)?;
    let window = match kind {
        "TUMBLING" => {
            cursor.expect_word("SIZE", example)?;
            WindowKind::Tumbling { size: cursor.duration(example)? }
        }
        "HOPPING" => {
            cursor.expect_word("SIZE", example)?;
            let size = cursor.duration(example)?;
            cursor.expect(Token::Comma, example)?;
            cursor.expect_word("ADVANCE", example)?;
            cursor.expect_word("BY", example)?;
            let advance_position = cursor.position();
            let advance = cursor.duration(example)?;
            if advance > size {
                return Err(SqlError::new("a hopping window's ADVANCE BY is larger than its SIZE: rows would fall in no window")
                    .at(advance_position)
                    .hint("use an advance no larger than the size"));
            }
            if size / advance > super::window::MAX_WINDOWS_PER_ROW {
                return Err(SqlError::new(format!(
                    "a hopping window of SIZE {} ADVANCE BY {} puts each row in {} windows; at most {} are supported",
                    super::ast::duration(size),
                    super::ast::duration(advance),
                    size / advance,
                    super::window::MAX_WINDOWS_PER_ROW
                ))
                .at(advance_position)
                .hint("use a larger ADVANCE BY"));
            }
            WindowKind::Hopping { size, advance }
        }
        _ => WindowKind::Session { gap: cursor.duration(example)? },
    };
    let mut grace = None;
    loop {
        let position = cursor.position();
        match cursor.advance().map(|t| t.token.clone()) {
            Some(Token::RParen) => break,
            Some(Token::Comma) => {
                let word_position = cursor.position();
                match cursor.advance().map(|t| t.token.clone()) {
                    Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("GRACE") => {
                        cursor.expect_word("PERIOD", example)?;
                        grace = Some(cursor.duration("GRACE PERIOD 10 SECONDS")?);
                    }
                    Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("RETENTION") => {
                        // ksqlDB keeps windows this long for pull queries; Eddy emits
                        // windows and frees them, so retention changes nothing.
                        cursor.duration(example)?;
                    }
                    other => return Err(found("expected GRACE PERIOD or RETENTION", other).at(word_position).hint(example.to_string())),
                }
            }
            other => return Err(found("expected ',' or ')'", other).at(position).hint(example.to_string())),
        }
    }
    Ok(KsqlWindow { kind: window, grace, position })
}

/// After `FOR SYSTEM_TIME AS OF`: a column, `proc_time` or `o.proc_time`, as its
/// normalized name parts.
fn parse_time_column(cursor: &mut Cursor<'_>) -> Result<Vec<String>, SqlError> {
    const EXAMPLE: &str = "write FOR SYSTEM_TIME AS OF o.proc_time, where proc_time is declared `proc_time AS PROCTIME()`";
    let mut parts = Vec::new();
    loop {
        let position = cursor.position();
        match cursor.advance().map(|t| t.token.clone()) {
            Some(Token::Word(w)) => parts.push(if w.quote_style.is_some() { w.value } else { w.value.to_lowercase() }),
            other => return Err(found("expected a time column", other).at(position).hint(EXAMPLE)),
        }
        match cursor.peek().map(|t| &t.token) {
            Some(Token::Period) => {
                cursor.advance();
            }
            _ => return Ok(parts),
        }
    }
}

/// After `WITHIN INTERVAL`: `'5' MINUTE`, `'5 MINUTES'` or `'300' SECONDS`, in ms.
fn parse_within(cursor: &mut Cursor<'_>) -> Result<i64, SqlError> {
    const EXAMPLE: &str = "write WITHIN INTERVAL '5' MINUTE after PATTERN (...)";
    let position = cursor.position();
    let text = match cursor.advance().map(|t| t.token.clone()) {
        Some(Token::SingleQuotedString(s)) => s,
        other => return Err(found("expected an interval such as '5'", other).at(position).hint(EXAMPLE)),
    };
    let mut parts = text.split_whitespace();
    let number: i64 = parts
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| SqlError::new(format!("WITHIN needs a positive whole number, found '{text}'")).at(position).hint(EXAMPLE))?;
    let unit = match parts.next() {
        Some(unit) => unit.to_string(),
        None => {
            let unit_position = cursor.position();
            match cursor.advance().map(|t| t.token.clone()) {
                Some(Token::Word(w)) => w.value,
                other => return Err(found("expected a time unit", other).at(unit_position).hint(UNITS_HINT)),
            }
        }
    };
    let ms = unit_ms(&unit).ok_or_else(|| SqlError::new(format!("unknown time unit {unit}")).at(position).hint(UNITS_HINT))?;
    number.checked_mul(ms).ok_or_else(|| SqlError::new("WITHIN is too large").at(position))
}

/// After ksqlDB's join `WITHIN`: `1 HOUR` or `(1 HOUR, 2 HOURS)`, then `[GRACE PERIOD n UNIT]`.
fn parse_join_within(cursor: &mut Cursor<'_>) -> Result<super::ast::JoinWithin, SqlError> {
    const EXAMPLE: &str = "write JOIN b WITHIN 1 HOUR [GRACE PERIOD 10 MINUTES] ON a.id = b.id, or WITHIN (1 HOUR, 2 HOURS)";
    let (before_ms, after_ms) = if cursor.peek().is_some_and(|t| t.token == Token::LParen) {
        cursor.advance();
        let before = cursor.duration(EXAMPLE)?;
        cursor.expect(Token::Comma, EXAMPLE)?;
        let after = cursor.duration(EXAMPLE)?;
        cursor.expect(Token::RParen, EXAMPLE)?;
        (before, after)
    } else {
        let d = cursor.duration(EXAMPLE)?;
        (d, d)
    };
    let grace_ms = if cursor.next_significant(cursor.at).and_then(|i| cursor.word_at(i)).as_deref() == Some("GRACE") {
        cursor.advance();
        cursor.expect_word("PERIOD", EXAMPLE)?;
        Some(cursor.duration("GRACE PERIOD takes a duration such as 10 MINUTES")?)
    } else {
        None
    };
    Ok(super::ast::JoinWithin { before_ms, after_ms, grace_ms })
}

/// After `SESSION(TABLE t`: `PARTITION BY a, b` up to (not including) the comma
/// before `DESCRIPTOR`.
fn parse_session_partition(cursor: &mut Cursor<'_>) -> Result<Vec<Name>, SqlError> {
    const EXAMPLE: &str = "write SESSION(TABLE t PARTITION BY key, DESCRIPTOR(ts), INTERVAL '5' MINUTES)";
    let Some(i) = cursor.next_significant(cursor.at) else { return Ok(Vec::new()) };
    if cursor.word_at(i).as_deref() != Some("PARTITION") {
        return Ok(Vec::new());
    }
    cursor.at = i + 1;
    cursor.expect_word("BY", EXAMPLE)?;
    let mut names = Vec::new();
    loop {
        let position = cursor.position();
        match cursor.advance().map(|t| t.token.clone()) {
            Some(Token::Word(w)) => {
                let value = if w.quote_style.is_some() { w.value } else { w.value.to_lowercase() };
                names.push(Name { value, position });
            }
            other => return Err(found("expected a column name after PARTITION BY", other).at(position).hint(EXAMPLE)),
        }
        let comma = cursor.next_significant(cursor.at).filter(|&j| cursor.tokens[j].token == Token::Comma);
        let Some(comma) = comma else { return Ok(names) };
        let after = cursor.next_significant(comma + 1);
        if after.and_then(|k| cursor.word_at(k)).as_deref() == Some("DESCRIPTOR") {
            return Ok(names);
        }
        cursor.at = comma + 1;
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::GenericDialect;
    use sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn run(sql: &str) -> Result<(String, String), SqlError> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location().unwrap_or_default();
        let (rest, clauses) = extract(tokens)?;
        let text: String = rest.iter().map(|t| t.token.to_string()).collect();
        Ok((text, clauses.to_string()))
    }

    #[test]
    fn ksqldb_window_and_emit_are_cut() -> Result<(), SqlError> {
        let (text, clauses) =
            run("SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 10 SECONDS) GROUP BY a EMIT CHANGES")?;
        assert_eq!(text, "SELECT a, COUNT(*) FROM s  GROUP BY a ");
        assert_eq!(clauses, " window=[tumbling(size=3s), grace=10s] emit=CHANGES");
        let (_, clauses) = run("SELECT 1 FROM s WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS) GROUP BY a")?;
        assert_eq!(clauses, " window=[hopping(size=1min, advance=10s)]");
        let (_, clauses) = run("SELECT 1 FROM s WINDOW SESSION (5 MINUTES, RETENTION 7 DAYS) GROUP BY a EMIT FINAL")?;
        assert_eq!(clauses, " window=[session(gap=5min)] emit=FINAL");
        Ok(())
    }

    #[test]
    fn flink_table_keyword_is_dropped() -> Result<(), SqlError> {
        let (text, _) = run("SELECT 1 FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '3' SECONDS))")?;
        assert_eq!(text, "SELECT 1 FROM TABLE(TUMBLE( t, DESCRIPTOR(ts), INTERVAL '3' SECONDS))");
        let (text, clauses) = run("SELECT 1 FROM TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTES))")?;
        assert_eq!(text, "SELECT 1 FROM TABLE(SESSION( t, DESCRIPTOR(ts), INTERVAL '5' MINUTES))");
        assert_eq!(clauses, " session_partition_by=[k]");
        Ok(())
    }

    #[test]
    fn within_is_cut_after_pattern() -> Result<(), SqlError> {
        let (text, clauses) =
            run("SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A N*? B) WITHIN INTERVAL '5' MINUTE DEFINE A AS true)")?;
        assert_eq!(text, "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A N*? B)  DEFINE A AS true)");
        assert_eq!(clauses, " within=5min");
        let (_, clauses) =
            run("SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A B) WITHIN INTERVAL '90 seconds' DEFINE A AS true)")?;
        assert_eq!(clauses, " within=90s");
        // WITHIN GROUP is not ours.
        let (text, clauses) = run("SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x) FROM t")?;
        assert_eq!((text.contains("WITHIN GROUP"), clauses.as_str()), (true, ""));
        Ok(())
    }

    #[test]
    fn pattern_exclusion_is_named() {
        let err = run("SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A {- B -} C) DEFINE A AS true)").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("exclusion {- -} is not supported in PATTERN (line 1, column 57); match the rows and leave them out of the MEASURES instead")
        );
    }

    #[test]
    fn window_errors_name_the_token() {
        let err = |sql: &str| run(sql).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            err("SELECT 1 FROM s WINDOW TUMBLING (SIZE 3 FORTNIGHTS) GROUP BY a"),
            "unknown time unit FORTNIGHTS (line 1, column 41); use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"
        );
        assert_eq!(
            err("SELECT 1 FROM s WINDOW HOPPING (SIZE 3 SECONDS) GROUP BY a"),
            "syntax error: expected ,, found ) (line 1, column 47); write WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS [, GRACE PERIOD 10 SECONDS])"
        );
    }
}
