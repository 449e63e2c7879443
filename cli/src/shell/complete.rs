//! The shell's line editor helper: multi-line input until a `;` that is not in a
//! string or comment, and tab completion of keywords, stream, table, column and query
//! names.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// Keywords offered by tab completion.
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "EMIT",
    "CHANGES",
    "FINAL",
    "LIMIT",
    "CREATE",
    "STREAM",
    "TABLE",
    "VIEW",
    "AS",
    "WITH",
    "UNION",
    "JOIN",
    "SYSTEM_TIME",
    "EXECUTE",
    "STATEMENT",
    "INSERT",
    "INTO",
    "DROP",
    "IF",
    "EXISTS",
    "DELETE",
    "TOPIC",
    "SHOW",
    "LIST",
    "STREAMS",
    "TABLES",
    "QUERIES",
    "TOPICS",
    "PROPERTIES",
    "DESCRIBE",
    "EXTENDED",
    "EXPLAIN",
    "TERMINATE",
    "ALL",
    "SET",
    "UNSET",
    "RUN",
    "SCRIPT",
    "WINDOW",
    "TUMBLING",
    "HOPPING",
    "SESSION",
    "SIZE",
    "ADVANCE",
    "GRACE",
    "PERIOD",
    "SECONDS",
    "MINUTES",
    "MATCH_RECOGNIZE",
    "PARTITION",
    "ORDER",
    "MEASURES",
    "PATTERN",
    "DEFINE",
    "WITHIN",
    "INTERVAL",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "KEY",
    "PRIMARY",
    "WATERMARK",
    "FOR",
    "EXIT",
    "QUIT",
    "HELP",
];

/// Whether `text` holds complete statements: it ends with `;` outside strings, quoted
/// identifiers and comments (`--` to the end of the line, `/* */`).
pub fn is_complete(text: &str) -> bool {
    let mut last_significant = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return false;
                }
                last_significant = Some(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        closed = true;
                        break;
                    }
                    prev = d;
                }
                if !closed {
                    return false;
                }
            }
            c if c.is_whitespace() => {}
            c => last_significant = Some(c),
        }
    }
    // A statement set (`EXECUTE STATEMENT SET BEGIN ...; ...; END;`) ends at its END.
    last_significant == Some(';') && !eddy_engine::split_statements(text).is_err_and(|e| e.message == "the statement set is not closed")
}

/// Words that complete without `;`: the shell's own commands.
pub fn is_shell_command(text: &str) -> bool {
    matches!(text.trim().trim_end_matches(';').to_lowercase().as_str(), "exit" | "quit" | "help" | "")
}

/// The editor helper; `names` is refreshed after each statement.
pub struct ShellHelper {
    /// Stream, table, column and query names.
    pub names: Arc<Mutex<Vec<String>>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map(|i| i + 1).unwrap_or(0);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_lowercase();
        let upper_case = word.chars().all(|c| !c.is_lowercase());
        let mut out: Vec<Pair> = Vec::new();
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        for name in names.iter().filter(|n| n.to_lowercase().starts_with(&lower)) {
            out.push(Pair { display: name.clone(), replacement: name.clone() });
        }
        for k in KEYWORDS.iter().filter(|k| k.to_lowercase().starts_with(&lower)) {
            let replacement = if upper_case { k.to_string() } else { k.to_lowercase() };
            out.push(Pair { display: k.to_string(), replacement });
        }
        out.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, out))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if is_shell_command(input) || is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_only_at_a_semicolon_outside_strings_and_comments() {
        assert!(is_complete("SELECT 1;"));
        assert!(!is_complete("EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO a SELECT * FROM s;"));
        assert!(is_complete("EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO a SELECT * FROM s;\nEND;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(!is_complete("SELECT 'a;' FROM s"));
        assert!(is_complete("SELECT 'it''s;' FROM s;"));
        assert!(!is_complete("SELECT 1 -- ;"));
        assert!(!is_complete("SELECT /* ; */ 1"));
        assert!(is_complete("SELECT /* ; */ 1\n;"));
        assert!(!is_complete("CREATE STREAM s (\n a INT\n)"));
    }
}
