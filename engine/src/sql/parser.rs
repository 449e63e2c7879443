//! Eddy's SQL parser: a wrapper around sqlparser in the manner of DataFusion's `DFParser`.
//!
//! The input is tokenized once with sqlparser's tokenizer (GenericDialect). For each
//! statement the leading tokens are peeked: `CREATE [OR REPLACE] STREAM|TABLE` is parsed
//! here with sqlparser's public helpers (columns with ksqlDB `KEY`, Flink `WATERMARK FOR`
//! and `PRIMARY KEY ... NOT ENFORCED`, and `WITH (...)` in both the ksqlDB
//! `KAFKA_TOPIC='x'` and the Flink `'connector'='kafka'` forms); everything else is handed
//! to sqlparser unchanged. sqlparser is never forked.
//!
//! Errors carry the line and column of the offending token and, where it helps, a hint.

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, TableObject};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::ast::*;
use crate::error::{lowercase_first, Position, SqlError};

/// Parses every statement of `sql` (separated by `;`).
///
/// Returns the statements in order, each with its own text and start position, or the
/// first syntax error as a [`SqlError`] with line, column and a hint.
pub fn parse_sql(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| {
        let (message, position) = split_location(&e.message);
        let position = position.or(Position::from_location(e.location));
        tokenizer_error(&message).at(position)
    })?;
    let mut out = Vec::new();
    let mut offsets = OffsetCursor::new(sql);
    // Inside Flink's statement set (`EXECUTE STATEMENT SET BEGIN ...; ...; END;`): where
    // it began, and its id.
    let mut statement_set: Option<(Position, u64)> = None;
    for chunk in split_statements(tokens) {
        let (chunk, set) = statement_set_edges(chunk, statement_set.is_some());
        match set {
            SetEdge::Begin(at) => statement_set = Some((at, new_statement_set())),
            SetEdge::End => {
                statement_set = None;
                continue;
            }
            SetEdge::None => {}
        }
        let Some(first) = chunk.iter().find(|t| !matches!(t.token, Token::Whitespace(_))).cloned() else { continue };
        check_complexity(&chunk, &first)?;
        check_identifiers(&chunk)?;
        let end = chunk.last().map(|t| t.span.end).unwrap_or(first.span.end);
        let (rest, clauses) = super::clauses::extract(chunk)?;
        let mut parser = StreamParser { parser: Parser::new(&dialect).with_tokens_with_locations(rest), clauses: Some(clauses) };
        let statement = parser.parse_statement()?;
        let next = parser.parser.peek_token();
        if next.token != Token::EOF {
            return Err(SqlError::new(format!("syntax error: expected end of statement, found {}", next.token))
                .at(Position::from_location(next.span.start))
                .hint("end each statement with ';'"));
        }
        if let Some(clauses) = parser.clauses.take().filter(|c| *c != Default::default()) {
            let position = clauses.window.as_ref().and_then(|w| w.position).or(clauses.emit.and_then(|e| e.1));
            return Err(SqlError::new("WINDOW and EMIT belong to a query").at(position).hint("remove them from this statement"));
        }
        let begin = offsets.byte_offset(first.span.start);
        let end_offset = offsets.byte_offset(end);
        let text = sql.get(begin..end_offset).unwrap_or_default().trim().to_string();
        let position = Position::from_location(first.span.start).unwrap_or_default();
        if statement_set.is_some() && !matches!(statement, Statement::InsertInto(_)) {
            return Err(SqlError::new("a statement set holds INSERT INTO ... SELECT statements only")
                .at(Some(position))
                .hint("move this statement before EXECUTE STATEMENT SET BEGIN"));
        }
        out.push(ParsedStatement { statement, text, position, statement_set: statement_set.map(|(_, id)| id) });
    }
    if let Some((at, _)) = statement_set {
        return Err(SqlError::new("the statement set is not closed").at(Some(at)).hint("end it with END;"));
    }
    Ok(out)
}

/// The id of the next statement set parsed in this process ([`ParsedStatement::statement_set`]).
static NEXT_STATEMENT_SET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh statement set id (a set parsed, or one replayed from the command log).
pub fn new_statement_set() -> u64 {
    NEXT_STATEMENT_SET.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where a chunk opens or closes a statement set.
enum SetEdge {
    None,
    /// `EXECUTE STATEMENT SET BEGIN` (its first statement follows in the same chunk) or
    /// `BEGIN STATEMENT SET` (a chunk of its own, older Flink SQL client syntax).
    Begin(Position),
    /// `END`.
    End,
}

/// Cuts a statement set's opening words off `chunk` (Flink: `EXECUTE STATEMENT SET BEGIN
/// INSERT ...;`, `BEGIN STATEMENT SET;`), recognizes its closing `END`, and drops the
/// `EXECUTE` of a single `EXECUTE INSERT INTO ...`. The statements of a set run as
/// queries of their own that share one read of each source they have in common
/// ([`crate::runtime::shared_read`]).
fn statement_set_edges(chunk: Vec<TokenWithSpan>, inside: bool) -> (Vec<TokenWithSpan>, SetEdge) {
    let significant: Vec<usize> =
        chunk.iter().enumerate().filter(|(_, t)| !matches!(t.token, Token::Whitespace(_))).map(|(i, _)| i).collect();
    let word = |n: usize| -> Option<String> {
        significant.get(n).and_then(|&i| match &chunk[i].token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_uppercase()),
            _ => None,
        })
    };
    let at = |n: usize| significant.get(n).and_then(|&i| Position::from_location(chunk[i].span.start)).unwrap_or_default();
    let words: Vec<Option<String>> = (0..4).map(word).collect();
    let is = |n: usize, w: &str| words.get(n).and_then(|x| x.as_deref()) == Some(w);
    if inside && is(0, "END") && significant.len() == 1 {
        return (Vec::new(), SetEdge::End);
    }
    if !inside && is(0, "BEGIN") && is(1, "STATEMENT") && is(2, "SET") && significant.len() == 3 {
        let position = at(0);
        return (Vec::new(), SetEdge::Begin(position));
    }
    if !inside && is(0, "EXECUTE") && is(1, "STATEMENT") && is(2, "SET") && is(3, "BEGIN") {
        let position = at(0);
        let cut = significant.get(4).copied().unwrap_or(chunk.len());
        return (chunk.into_iter().skip(cut).collect(), SetEdge::Begin(position));
    }
    if is(0, "EXECUTE") && is(1, "INSERT") {
        let cut = significant[1];
        return (chunk.into_iter().skip(cut).collect(), SetEdge::None);
    }
    (chunk, SetEdge::None)
}

/// Most operators one statement may hold (arithmetic, comparison, `AND`/`OR`, `::`, ...).
///
/// sqlparser builds a chain of operators (`1+1+...+1`, `a=1 OR a=2 OR ...`) into a
/// left-deep tree without recursing, but everything after it (cloning, dropping,
/// planning, evaluating) recurses once per operator: a request of a few kilobytes could
/// overflow the stack and abort the process. Nesting by parentheses and function calls
/// is bounded separately by sqlparser's recursion limit. The tree's depth is at most the
/// number of operators, and this many levels fit the smallest stack Eddy plans and runs
/// statements on (PostgreSQL's `max_stack_depth` plays the same part).
pub const MAX_OPERATORS_PER_STATEMENT: usize = 1_000;

/// Refuses a statement with more than [`MAX_OPERATORS_PER_STATEMENT`] operators, before
/// it is parsed.
fn check_complexity(tokens: &[TokenWithSpan], first: &TokenWithSpan) -> Result<(), SqlError> {
    let operators = tokens
        .iter()
        .filter(|t| match &t.token {
            Token::Word(w) => {
                matches!(
                    w.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::XOR
                        | Keyword::IS
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::COLLATE
                        | Keyword::AT
                        | Keyword::DIV
                )
            }
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::DoubleColon
            | Token::LBracket
            | Token::Arrow
            | Token::LongArrow
            | Token::HashArrow
            | Token::HashLongArrow
            | Token::Tilde
            | Token::ExclamationMark
            | Token::Period => true,
            _ => false,
        })
        .count();
    if operators > MAX_OPERATORS_PER_STATEMENT {
        return Err(SqlError::new(format!(
            "statement too complex: {operators} operators, more than the limit of {MAX_OPERATORS_PER_STATEMENT} (stack depth limit)"
        ))
        .at(Position::from_location(first.span.start))
        .hint("split the expression, e.g. write a IN (1, 2, 3) instead of a = 1 OR a = 2 OR a = 3"));
    }
    Ok(())
}

/// Longest identifier (characters), as PostgreSQL's `NAMEDATALEN` bounds its names.
pub const MAX_IDENTIFIER_CHARS: usize = 255;

/// Refuses identifiers that no catalog, topic or table should hold: longer than
/// [`MAX_IDENTIFIER_CHARS`], or with a control character (NUL, newline, escape, ...),
/// which would be stored in the command log and shown to every client.
fn check_identifiers(tokens: &[TokenWithSpan]) -> Result<(), SqlError> {
    for t in tokens {
        let Token::Word(w) = &t.token else { continue };
        let position = Position::from_location(t.span.start);
        if let Some(c) = w.value.chars().find(|c| c.is_control()) {
            return Err(SqlError::new(format!("identifier contains the control character U+{:04X}", c as u32))
                .at(position)
                .hint("names may hold any printable character; remove the control character"));
        }
        let chars = w.value.chars().count();
        if chars > MAX_IDENTIFIER_CHARS {
            return Err(SqlError::new(format!("identifier too long: {chars} characters, more than the limit of {MAX_IDENTIFIER_CHARS}"))
                .at(position)
                .hint("use a shorter name"));
        }
    }
    Ok(())
}

/// Splits tokens into statements at `;` (outside parentheses); the semicolons are dropped.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0usize;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::SemiColon if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        current.push(t);
    }
    out.push(current);
    out
}

/// Byte offsets of 1-based line/column locations (columns in characters) in a text,
/// for locations that mostly come in increasing order (statement starts and ends): each
/// lookup walks on from the previous one, so splitting a text into statements is linear
/// in its length, not quadratic (a lookup behind the cursor starts over).
struct OffsetCursor<'a> {
    sql: &'a str,
    byte: usize,
    line: u64,
    column: u64,
}

impl<'a> OffsetCursor<'a> {
    fn new(sql: &'a str) -> Self {
        OffsetCursor { sql, byte: 0, line: 1, column: 1 }
    }

    /// The byte offset of `loc`; the text's length for an unknown location (line 0) or
    /// one at or past the end.
    fn byte_offset(&mut self, loc: Location) -> usize {
        if loc.line == 0 {
            return self.sql.len();
        }
        if (loc.line, loc.column) < (self.line, self.column) {
            *self = OffsetCursor::new(self.sql);
        }
        for (i, ch) in self.sql[self.byte..].char_indices() {
            if (self.line, self.column) == (loc.line, loc.column) {
                self.byte += i;
                return self.byte;
            }
            if ch == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.byte = self.sql.len();
        self.sql.len()
    }
}

/// Splits sqlparser's ` at Line: L, Column: C` suffix off a message.
fn split_location(message: &str) -> (String, Option<Position>) {
    if let Some(idx) = message.rfind(" at Line: ") {
        let tail = &message[idx + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse::<u64>().ok());
        let column = parts.next().and_then(|c| c.trim().parse::<u64>().ok());
        if let (Some(line), Some(column)) = (line, column) {
            return (message[..idx].to_string(), Some(Position { line, column }));
        }
    }
    (message.to_string(), None)
}

fn tokenizer_error(message: &str) -> SqlError {
    let lower = lowercase_first(message);
    let err = SqlError::new(format!("syntax error: {lower}"));
    if lower.starts_with("unterminated string") {
        err.hint("close the string with a single quote ('); write '' for a quote inside a string")
    } else {
        err
    }
}

/// Converts a sqlparser error into Eddy's error text: `syntax error: expected X, found Y`.
fn parser_error(e: ParserError) -> SqlError {
    match e {
        ParserError::TokenizerError(m) => {
            let (message, position) = split_location(&m);
            tokenizer_error(&message).at(position)
        }
        ParserError::ParserError(m) => {
            let (message, position) = split_location(&m);
            let message = message.replacen("Expected: ", "expected ", 1).replacen(", found: ", ", found ", 1);
            SqlError::new(format!("syntax error: {}", lowercase_first(&message))).at(position)
        }
        ParserError::RecursionLimitExceeded => {
            SqlError::new("statement is nested too deeply").hint("split the expression into smaller parts")
        }
    }
}

/// Normalizes an identifier as DataFusion does: unquoted names are lowercased.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// A [`Name`] from an identifier.
pub fn name_of(ident: &Ident) -> Name {
    Name { value: normalize_ident(ident), position: Position::from_location(ident.span.start) }
}

/// A [`Name`] from a one-part object name; `schema.table` is refused.
pub fn object_name(name: &ObjectName) -> Result<Name, SqlError> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Ok(name_of(ident)),
        _ => {
            let position = name.0.first().and_then(|p| p.as_ident()).and_then(|i| Position::from_location(i.span.start));
            Err(SqlError::new(format!("qualified names are not supported: {name}"))
                .at(position)
                .hint("streams and tables live in one namespace; drop the qualifier"))
        }
    }
}

/// The statement parser: sqlparser's [`Parser`] plus Eddy's statements.
pub struct StreamParser<'a> {
    /// The wrapped sqlparser parser (public, as in DataFusion's `DFParser`).
    pub parser: Parser<'a>,
    /// The streaming clauses cut out of this statement's tokens, taken by the query
    /// that owns them.
    pub clauses: Option<StreamClauses>,
}

impl StreamParser<'_> {
    fn peek_word(&self, n: usize) -> Option<String> {
        match &self.parser.peek_nth_token(n).token {
            Token::Word(w) => Some(w.value.to_uppercase()),
            _ => None,
        }
    }

    fn position(&self) -> Option<Position> {
        Position::from_location(self.parser.peek_token().span.start)
    }

    /// Parses one statement.
    pub fn parse_statement(&mut self) -> Result<Statement, SqlError> {
        if self.peek_word(0).as_deref() == Some("CREATE") {
            let mut n = 1;
            if self.peek_word(1).as_deref() == Some("OR") && self.peek_word(2).as_deref() == Some("REPLACE") {
                n = 3;
            }
            if matches!(self.peek_word(n).as_deref(), Some("STREAM") | Some("TABLE")) {
                return self.parse_create();
            }
            if self.peek_word(n).as_deref() == Some("MODEL") {
                return self.parse_create_model();
            }
        }
        if let Some(control) = self.parse_control()? {
            return Ok(control);
        }
        let start = self.position();
        let statement = self.parser.parse_statement().map_err(parser_error)?;
        match statement {
            sqlparser::ast::Statement::Insert(insert) => {
                let target = match &insert.table {
                    TableObject::TableName(name) => object_name(name)?,
                    other => {
                        return Err(SqlError::new(format!("cannot insert into {other}"))
                            .at(start)
                            .hint("INSERT INTO takes the name of a stream or table"))
                    }
                };
                if let Some(sqlparser::ast::SetExpr::Values(values)) = insert.source.as_ref().map(|q| q.body.as_ref()) {
                    let columns = insert.columns.iter().map(|c| match c {
                        sqlparser::ast::ObjectName(parts) if parts.len() == 1 => parts[0].as_ident().map(name_of),
                        _ => None,
                    });
                    let columns: Option<Vec<Name>> = columns.collect();
                    let Some(columns) = columns else {
                        return Err(SqlError::new("INSERT ... VALUES takes plain column names").at(start));
                    };
                    return Ok(Statement::InsertValues(InsertValues {
                        target,
                        columns,
                        rows: values.rows.iter().map(|r| r.content.clone()).collect(),
                    }));
                }
                if !insert.columns.is_empty() {
                    return Err(SqlError::new("INSERT with a column list is not supported")
                        .at(start)
                        .hint("select the columns in the sink's order instead"));
                }
                let query = insert.source.ok_or_else(|| {
                    SqlError::new("INSERT needs a SELECT").at(start).hint("write INSERT INTO sink SELECT ... FROM stream")
                })?;
                let clauses = self.clauses.take().unwrap_or_default();
                Ok(Statement::InsertInto(InsertInto { target, query, clauses }))
            }
            sqlparser::ast::Statement::Query(query) => Ok(Statement::Query(query, self.clauses.take().unwrap_or_default())),
            sqlparser::ast::Statement::CreateView(view) => {
                if view.materialized {
                    return Err(SqlError::new("CREATE MATERIALIZED VIEW is not supported")
                        .at(start)
                        .hint("write CREATE TABLE name AS SELECT ... to keep a query's result"));
                }
                if self.clauses.take().is_some_and(|c| c != StreamClauses::default()) {
                    return Err(SqlError::new("a view cannot hold EMIT, WINDOW, WITHIN or FOR SYSTEM_TIME AS OF")
                        .at(start)
                        .hint("put them in the query that reads the view"));
                }
                Ok(Statement::CreateView(CreateView {
                    or_replace: view.or_replace,
                    if_not_exists: view.if_not_exists,
                    name: object_name(&view.name)?,
                    columns: view.columns.iter().map(|c| c.name.clone()).collect(),
                    query: view.query,
                }))
            }
            other => {
                let kind = other.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                Err(SqlError::new(format!("unsupported statement: {kind}"))
                    .at(start)
                    .hint("Eddy runs CREATE STREAM, CREATE TABLE, CREATE STREAM ... AS SELECT and INSERT INTO ... SELECT"))
            }
        }
    }

    /// The ksqlDB statements that manage a running engine: SHOW, DESCRIBE, EXPLAIN,
    /// TERMINATE, DROP STREAM|TABLE, SET, UNSET, RUN SCRIPT. `None` when the statement
    /// is none of them.
    fn parse_control(&mut self) -> Result<Option<Statement>, SqlError> {
        let first = self.peek_word(0);
        let statement = match first.as_deref() {
            Some("SHOW") | Some("LIST") => {
                self.parser.next_token();
                let position = self.position();
                let what = match self.peek_word(0).as_deref() {
                    Some("STREAMS") => ShowKind::Streams,
                    Some("TABLES") => ShowKind::Tables,
                    Some("QUERIES") => ShowKind::Queries,
                    Some("TOPICS") => ShowKind::Topics,
                    Some("PROPERTIES") => ShowKind::Properties,
                    Some("MODELS") => ShowKind::Models,
                    Some("VIEWS") => ShowKind::Views,
                    _ => {
                        return Err(SqlError::new(format!(
                            "syntax error: expected STREAMS, TABLES, QUERIES, TOPICS, PROPERTIES, MODELS or VIEWS, found {}",
                            self.parser.peek_token().token
                        ))
                        .at(position)
                        .hint("write SHOW STREAMS, SHOW TABLES, SHOW QUERIES, SHOW TOPICS, SHOW PROPERTIES, SHOW MODELS or SHOW VIEWS"))
                    }
                };
                self.parser.next_token();
                let extended = self.parse_word("EXTENDED");
                Statement::Show { what, extended }
            }
            Some("DESCRIBE") | Some("DESC") if self.peek_word(1).as_deref() == Some("MODEL") && self.peek_word(2).is_some() => {
                self.parser.next_token();
                self.parser.next_token();
                Statement::DescribeModel(object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?)
            }
            Some("DROP")
                if self.peek_word(1).as_deref() == Some("VIEW")
                    || (self.peek_word(1).as_deref() == Some("TEMPORARY") && self.peek_word(2).as_deref() == Some("VIEW")) =>
            {
                self.parser.next_token();
                self.parse_word("TEMPORARY");
                self.parser.next_token();
                let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
                Statement::DropView { name, if_exists }
            }
            Some("DROP") if self.peek_word(1).as_deref() == Some("MODEL") => {
                self.parser.next_token();
                self.parser.next_token();
                let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
                Statement::DropModel { name, if_exists }
            }
            Some("DESCRIBE") | Some("DESC") => {
                self.parser.next_token();
                let extended = self.peek_word(1).is_some() && self.parse_word("EXTENDED");
                let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
                Statement::Describe { name, extended }
            }
            Some("EXPLAIN") => {
                self.parser.next_token();
                // `(FORMAT DOT|TEXT)`, PostgreSQL's option list.
                let mut dot = false;
                if self.parser.peek_token().token == Token::LParen {
                    self.parser.next_token();
                    let position = self.position();
                    let hint = "write EXPLAIN (FORMAT DOT) <statement or query id>, or EXPLAIN (FORMAT TEXT) ...";
                    if !self.parse_word("FORMAT") {
                        return Err(SqlError::new(format!("syntax error: expected FORMAT, found {}", self.parser.peek_token().token))
                            .at(position)
                            .hint(hint));
                    }
                    let position = self.position();
                    dot = match self.peek_word(0).as_deref() {
                        Some("DOT") => true,
                        Some("TEXT") => false,
                        _ => {
                            return Err(SqlError::new(format!(
                                "syntax error: expected DOT or TEXT, found {}",
                                self.parser.peek_token().token
                            ))
                            .at(position)
                            .hint(hint))
                        }
                    };
                    self.parser.next_token();
                    self.parser.expect_token(&Token::RParen).map_err(|e| parser_error(e).hint(hint))?;
                }
                let target =
                    if matches!(self.parser.peek_token().token, Token::Word(_)) && self.parser.peek_nth_token(1).token == Token::EOF {
                        ExplainTarget::Query(name_of(&self.parser.parse_identifier().map_err(parser_error)?))
                    } else {
                        ExplainTarget::Statement(Box::new(self.parse_statement()?))
                    };
                Statement::Explain(if dot { ExplainTarget::Dot(Box::new(target)) } else { target })
            }
            Some("TERMINATE") => {
                self.parser.next_token();
                if self.parse_word("ALL") {
                    Statement::Terminate(None)
                } else {
                    let position = self.position();
                    let id = self.parser.parse_identifier().map_err(|e| {
                        parser_error(e).at(position).hint("write TERMINATE <query id> (SHOW QUERIES lists them) or TERMINATE ALL")
                    })?;
                    Statement::Terminate(Some(name_of(&id)))
                }
            }
            Some("DROP") if matches!(self.peek_word(1).as_deref(), Some("STREAM") | Some("TABLE")) => {
                self.parser.next_token();
                let kind = if self.parse_word("STREAM") {
                    ObjectKind::Stream
                } else {
                    self.parser.next_token();
                    ObjectKind::Table
                };
                let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
                let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
                let delete_topic = if self.peek_word(0).as_deref() == Some("DELETE") {
                    self.parser.next_token();
                    if !self.parse_word("TOPIC") {
                        return Err(SqlError::new(format!("syntax error: expected TOPIC, found {}", self.parser.peek_token().token))
                            .at(self.position())
                            .hint("write DROP STREAM name DELETE TOPIC"));
                    }
                    true
                } else {
                    false
                };
                Statement::Drop { kind, name, if_exists, delete_topic }
            }
            Some("SET") if matches!(self.parser.peek_nth_token(1).token, Token::SingleQuotedString(_)) => {
                self.parser.next_token();
                let property = self.parser.parse_literal_string().map_err(parser_error)?.to_lowercase();
                self.parser.expect_token(&Token::Eq).map_err(|e| parser_error(e).hint("write SET 'property'='value'"))?;
                let value =
                    self.parser.parse_literal_string().map_err(|e| parser_error(e).hint("quote the value: SET 'property'='value'"))?;
                Statement::Set { property, value }
            }
            Some("UNSET") => {
                self.parser.next_token();
                let property =
                    self.parser.parse_literal_string().map_err(|e| parser_error(e).hint("write UNSET 'property'"))?.to_lowercase();
                Statement::Unset { property }
            }
            Some("RUN") if self.peek_word(1).as_deref() == Some("SCRIPT") => {
                self.parser.next_token();
                self.parser.next_token();
                let path = self
                    .parser
                    .parse_literal_string()
                    .map_err(|e| parser_error(e).hint("quote the path: RUN SCRIPT '/path/to/file.sql'"))?;
                Statement::RunScript { path }
            }
            _ => return Ok(None),
        };
        Ok(Some(statement))
    }

    /// Consumes the word `word` (uppercase) if it comes next.
    fn parse_word(&mut self, word: &str) -> bool {
        if self.peek_word(0).as_deref() == Some(word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn parse_create(&mut self) -> Result<Statement, SqlError> {
        self.parser.expect_keyword_is(Keyword::CREATE).map_err(parser_error)?;
        let or_replace = self.parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        let kind = match self.peek_word(0).as_deref() {
            Some("STREAM") => ObjectKind::Stream,
            _ => ObjectKind::Table,
        };
        self.parser.next_token();
        let if_not_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
        let mut columns = Vec::new();
        let mut primary_key = Vec::new();
        let mut watermark = None;
        let has_columns = self.parser.peek_token().token == Token::LParen;
        if has_columns {
            self.parse_columns(&mut columns, &mut primary_key, &mut watermark)?;
        }
        let options = self.parse_with_options()?;
        if self.parser.parse_keyword(Keyword::AS) {
            if has_columns {
                return Err(SqlError::new("CREATE ... AS SELECT takes its columns from the query")
                    .at(name.position)
                    .hint("drop the column list"));
            }
            let query = self.parser.parse_query().map_err(parser_error)?;
            let clauses = self.clauses.take().unwrap_or_default();
            return Ok(Statement::CreateAs(CreateAs { kind, or_replace, if_not_exists, name, options, query, clauses }));
        }
        if !has_columns {
            let found = self.parser.peek_token();
            return Err(SqlError::new(format!("syntax error: expected a column list or AS SELECT, found {}", found.token))
                .at(Position::from_location(found.span.start))
                .hint(format!("write CREATE {kind} {name} (col TYPE, ...) WITH (...)")));
        }
        Ok(Statement::CreateSource(CreateSource { kind, or_replace, if_not_exists, name, columns, primary_key, watermark, options }))
    }

    /// `CREATE [OR REPLACE] MODEL [IF NOT EXISTS] name INPUT (...) OUTPUT (...) [COMMENT
    /// '...'] WITH (...)`.
    fn parse_create_model(&mut self) -> Result<Statement, SqlError> {
        self.parser.expect_keyword_is(Keyword::CREATE).map_err(parser_error)?;
        let or_replace = self.parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        self.parser.next_token();
        let if_not_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = object_name(&self.parser.parse_object_name(false).map_err(parser_error)?)?;
        let columns = |parser: &mut Self, word: &str| -> Result<Vec<ColumnSpec>, SqlError> {
            if !parser.parse_word(word) {
                let found = parser.parser.peek_token();
                return Err(SqlError::new(format!("syntax error: expected {word}, found {}", found.token))
                    .at(Position::from_location(found.span.start))
                    .hint(
                        "write CREATE MODEL name INPUT (col TYPE, ...) OUTPUT (col TYPE, ...) WITH ('provider' = 'pmml', 'path' = '...')",
                    ));
            }
            let mut columns = Vec::new();
            let (mut key, mut watermark) = (Vec::new(), None);
            parser.parse_columns(&mut columns, &mut key, &mut watermark)?;
            if let Some(c) = columns.iter().find(|c| c.data_type.is_none() || c.key || c.primary_key) {
                return Err(
                    SqlError::new(format!("{word} column \"{}\" must be a plain column with a type", c.name.value)).at(c.name.position)
                );
            }
            if !key.is_empty() || watermark.is_some() {
                return Err(SqlError::new(format!("{word} takes columns only")).at(name.position));
            }
            Ok(columns)
        };
        let inputs = columns(self, "INPUT")?;
        let outputs = columns(self, "OUTPUT")?;
        if self.parse_word("COMMENT") {
            self.parser.parse_literal_string().map_err(parser_error)?;
        }
        let options = self.parse_with_options()?;
        Ok(Statement::CreateModel(CreateModel { or_replace, if_not_exists, name, inputs, outputs, options }))
    }

    fn parse_columns(
        &mut self,
        columns: &mut Vec<ColumnSpec>,
        primary_key: &mut Vec<Name>,
        watermark: &mut Option<WatermarkSpec>,
    ) -> Result<(), SqlError> {
        self.parser.expect_token(&Token::LParen).map_err(parser_error)?;
        loop {
            if self.peek_word(0).as_deref() == Some("WATERMARK") {
                self.parser.next_token();
                self.parser.expect_keyword_is(Keyword::FOR).map_err(parser_error)?;
                let column = name_of(&self.parser.parse_identifier().map_err(parser_error)?);
                self.parser.expect_keyword_is(Keyword::AS).map_err(parser_error)?;
                let expr = self.parser.parse_expr().map_err(parser_error)?;
                *watermark = Some(WatermarkSpec { column, expr });
            } else if self.peek_word(0).as_deref() == Some("PRIMARY") && self.peek_word(1).as_deref() == Some("KEY") {
                self.parser.next_token();
                self.parser.next_token();
                self.parser.expect_token(&Token::LParen).map_err(parser_error)?;
                let idents = self.parser.parse_comma_separated(|p| p.parse_identifier()).map_err(parser_error)?;
                self.parser.expect_token(&Token::RParen).map_err(parser_error)?;
                primary_key.extend(idents.iter().map(name_of));
                let _ = self.parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
            } else {
                columns.push(self.parse_column()?);
            }
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            let next = self.parser.peek_token();
            if next.token == Token::RParen {
                self.parser.next_token();
                return Ok(());
            }
            return Err(SqlError::new(format!("syntax error: expected ',' or ')' after a column, found {}", next.token))
                .at(Position::from_location(next.span.start)));
        }
    }

    fn parse_column(&mut self) -> Result<ColumnSpec, SqlError> {
        let name = name_of(&self.parser.parse_identifier().map_err(parser_error)?);
        let next = self.parser.peek_token();
        let type_position = Position::from_location(next.span.start);
        if self.parser.parse_keyword(Keyword::AS) {
            // Flink computed column: `ts AS TO_TIMESTAMP_LTZ(event_ts, 0)`.
            let expr = self.parser.parse_expr().map_err(parser_error)?;
            return Ok(ColumnSpec {
                name,
                data_type: None,
                type_position,
                key: false,
                primary_key: false,
                not_null: false,
                computed: Some(expr),
            });
        }
        let missing = match &next.token {
            Token::Comma | Token::RParen | Token::EOF => true,
            Token::Word(w) => matches!(w.value.to_uppercase().as_str(), "KEY" | "PRIMARY" | "NOT" | "NULL"),
            _ => false,
        };
        if missing {
            return Err(SqlError::new(format!("column \"{name}\" has no type"))
                .at(type_position)
                .hint(format!("write {name} VARCHAR KEY, or another type: INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR, TIMESTAMP(3)")));
        }
        let data_type = Some(super::column_type::parse_column_type(&mut self.parser)?);
        let mut column = ColumnSpec { name, data_type, type_position, key: false, primary_key: false, not_null: false, computed: None };
        loop {
            match self.peek_word(0).as_deref() {
                Some("KEY") => {
                    self.parser.next_token();
                    column.key = true;
                }
                Some("PRIMARY") => {
                    self.parser.next_token();
                    self.parser.expect_keyword_is(Keyword::KEY).map_err(parser_error)?;
                    column.primary_key = true;
                    let _ = self.parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
                }
                Some("NOT") => {
                    self.parser.next_token();
                    self.parser.expect_keyword_is(Keyword::NULL).map_err(parser_error)?;
                    column.not_null = true;
                }
                Some("NULL") => {
                    self.parser.next_token();
                }
                _ => return Ok(column),
            }
        }
    }

    fn parse_with_options(&mut self) -> Result<Vec<WithOption>, SqlError> {
        if !self.parser.parse_keyword(Keyword::WITH) {
            return Ok(Vec::new());
        }
        self.parser.expect_token(&Token::LParen).map_err(parser_error)?;
        let mut options: Vec<WithOption> = Vec::new();
        if self.parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        loop {
            let key_token = self.parser.next_token();
            let key_position = Position::from_location(key_token.span.start);
            let mut key = match &key_token.token {
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
                Token::Word(w) => w.value.clone(),
                other => {
                    return Err(SqlError::new(format!("syntax error: expected an option name, found {other}"))
                        .at(key_position)
                        .hint("write WITH (kafka_topic='t', value_format='json') or WITH ('connector'='kafka', ...)"))
                }
            };
            while let Token::Word(_) = key_token.token {
                if !self.parser.consume_token(&Token::Period) {
                    break;
                }
                match self.parser.next_token().token {
                    Token::Word(w) => {
                        key.push('.');
                        key.push_str(&w.value);
                    }
                    other => return Err(SqlError::new(format!("syntax error: expected an option name, found {other}")).at(key_position)),
                }
            }
            let key = key.to_lowercase();
            self.parser.expect_token(&Token::Eq).map_err(parser_error)?;
            let value_token: TokenWithSpan = self.parser.next_token();
            let value_position = Position::from_location(value_token.span.start);
            let value = match value_token.token {
                Token::SingleQuotedString(s) => s,
                Token::Number(n, _) => n,
                Token::Word(w) => w.value,
                Token::Minus => match self.parser.next_token().token {
                    Token::Number(n, _) => format!("-{n}"),
                    other => {
                        return Err(SqlError::new(format!("syntax error: expected a number after '-', found {other}")).at(value_position))
                    }
                },
                other => {
                    return Err(SqlError::new(format!("syntax error: expected a value for option '{key}', found {other}"))
                        .at(value_position)
                        .hint("option values are quoted strings, numbers or words: kafka_topic='server-logs'"))
                }
            };
            if options.iter().any(|o| o.key == key) {
                return Err(SqlError::new(format!("option '{key}' is given twice")).at(key_position));
            }
            options.push(WithOption { key, key_position, value, value_position });
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            self.parser.expect_token(&Token::RParen).map_err(parser_error)?;
            return Ok(options);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_texts_and_positions_across_lines_and_wide_characters() -> Result<(), SqlError> {
        let sql = "SHOW STREAMS; SET 'ä'='ö';\n  SHOW TABLES;\nSET 'x'='日本'; SHOW QUERIES";
        let parsed = parse_sql(sql)?;
        let got: Vec<(&str, u64, u64)> = parsed.iter().map(|p| (p.text.as_str(), p.position.line, p.position.column)).collect();
        assert_eq!(
            got,
            [("SHOW STREAMS", 1, 1), ("SET 'ä'='ö'", 1, 15), ("SHOW TABLES", 2, 3), ("SET 'x'='日本'", 3, 1), ("SHOW QUERIES", 3, 15)]
        );
        // Many statements on one line: each text is its own (the cursor walks on).
        let many = "SHOW STREAMS;".repeat(5_000);
        let parsed = parse_sql(&many)?;
        assert_eq!(parsed.len(), 5_000);
        assert!(parsed.iter().all(|p| p.text == "SHOW STREAMS"));
        assert_eq!(parsed[4_999].position, Position { line: 1, column: 4_999 * 13 + 1 });
        Ok(())
    }

    #[test]
    fn identifiers_with_control_characters_or_too_long_are_refused() {
        let e = parse_sql("CREATE STREAM \"a\u{0}b\" (x INT) WITH (kafka_topic='t', value_format='json')").err();
        assert_eq!(e.map(|e| e.to_string()).as_deref(), Some("identifier contains the control character U+0000 (line 1, column 15); names may hold any printable character; remove the control character"));
        let long = "n".repeat(MAX_IDENTIFIER_CHARS + 1);
        let e = parse_sql(&format!("SELECT x FROM {long}")).err();
        assert_eq!(e.map(|e| e.message).as_deref(), Some("identifier too long: 256 characters, more than the limit of 255"));
        assert!(parse_sql(&format!("SELECT x FROM {}", "n".repeat(MAX_IDENTIFIER_CHARS))).is_ok());
    }

    #[test]
    fn operator_chains_past_the_limit_are_refused_before_parsing() {
        let ok = format!("SELECT {} FROM s", vec!["a"; MAX_OPERATORS_PER_STATEMENT + 1].join("+"));
        assert!(parse_sql(&ok).is_ok());
        let deep = format!("SHOW STREAMS;\nSELECT {} FROM s", vec!["a"; MAX_OPERATORS_PER_STATEMENT + 2].join(" OR "));
        let e = parse_sql(&deep).err().unwrap_or_else(|| SqlError::new("accepted"));
        assert_eq!(e.message, "statement too complex: 1001 operators, more than the limit of 1000 (stack depth limit)");
        assert_eq!(e.position, Some(Position { line: 2, column: 1 }));
    }

    fn one(sql: &str) -> String {
        let mut stmts = parse_sql(sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stmts.len(), 1);
        stmts.remove(0).statement.to_string()
    }

    fn err(sql: &str) -> String {
        match parse_sql(sql) {
            Ok(s) => panic!("parsed: {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn control_statements() {
        assert_eq!(one("SHOW STREAMS;"), "SHOW STREAMS");
        assert_eq!(one("list queries extended"), "SHOW QUERIES EXTENDED");
        assert_eq!(one("SHOW TOPICS"), "SHOW TOPICS");
        assert_eq!(one("DESCRIBE EXTENDED server_logs"), "DESCRIBE EXTENDED server_logs");
        assert_eq!(one("DESCRIBE extended"), "DESCRIBE extended");
        assert_eq!(one("EXPLAIN csas_alerts"), "EXPLAIN QUERY csas_alerts");
        assert_eq!(one("EXPLAIN SELECT a FROM s EMIT CHANGES LIMIT 3"), "EXPLAIN [QUERY [SELECT a FROM s LIMIT 3] emit=CHANGES]");
        assert_eq!(one("TERMINATE insert_server_log;"), "TERMINATE insert_server_log");
        assert_eq!(one("TERMINATE ALL"), "TERMINATE ALL");
        assert_eq!(one("DROP STREAM IF EXISTS alerts DELETE TOPIC"), "DROP STREAM IF EXISTS alerts DELETE TOPIC");
        assert_eq!(one("DROP TABLE server_log"), "DROP TABLE server_log");
        assert_eq!(one("SET 'Auto.Offset.Reset' = 'earliest'"), "SET 'auto.offset.reset'='earliest'");
        assert_eq!(one("UNSET 'auto.offset.reset'"), "UNSET 'auto.offset.reset'");
        assert_eq!(one("RUN SCRIPT '/tmp/x.sql'"), "RUN SCRIPT '/tmp/x.sql'");
        assert_eq!(
            err("SHOW STREAM"),
            "syntax error: expected STREAMS, TABLES, QUERIES, TOPICS, PROPERTIES, MODELS or VIEWS, found STREAM (line 1, column 6); write SHOW STREAMS, SHOW TABLES, SHOW QUERIES, SHOW TOPICS, SHOW PROPERTIES, SHOW MODELS or SHOW VIEWS"
        );
        // Flink 2.1's model statements.
        assert_eq!(
            one("CREATE MODEL m INPUT (a DOUBLE, b VARCHAR) OUTPUT (p DOUBLE) COMMENT 'x' WITH ('provider' = 'pmml', 'path' = 'm.pmml')"),
            "CREATE MODEL m input=[a DOUBLE, b VARCHAR] output=[p DOUBLE] with=[provider='pmml', path='m.pmml']"
        );
        assert_eq!(
            one("CREATE OR REPLACE MODEL IF NOT EXISTS m INPUT (a INT) OUTPUT (p DOUBLE) WITH ('provider' = 'pmml', 'path' = 'm.pmml')"),
            "CREATE OR REPLACE MODEL IF NOT EXISTS m input=[a INT] output=[p DOUBLE] with=[provider='pmml', path='m.pmml']"
        );
        assert_eq!(one("DROP MODEL IF EXISTS m"), "DROP MODEL IF EXISTS m");
        assert_eq!(one("DESCRIBE MODEL m"), "DESCRIBE MODEL m");
        assert_eq!(one("SHOW MODELS"), "SHOW MODELS");
        assert_eq!(
            err("CREATE MODEL m OUTPUT (p DOUBLE) WITH ('provider' = 'pmml')"),
            "syntax error: expected INPUT, found OUTPUT (line 1, column 16); write CREATE MODEL name INPUT (col TYPE, ...) OUTPUT (col TYPE, ...) WITH ('provider' = 'pmml', 'path' = '...')"
        );
        assert_eq!(err("DROP STREAM s DELETE"), "syntax error: expected TOPIC, found EOF; write DROP STREAM name DELETE TOPIC");
    }

    #[test]
    fn ksqldb_stream() {
        assert_eq!(
            one("CREATE STREAM server_logs (event_id VARCHAR KEY, account_id INT) WITH (KAFKA_TOPIC='server-logs', value_format='DELIMITED', partitions=4);"),
            "CREATE STREAM server_logs cols=[event_id VARCHAR KEY, account_id INT] with=[kafka_topic='server-logs', value_format='DELIMITED', partitions='4']"
        );
    }

    #[test]
    fn statement_text_and_positions() {
        let stmts = parse_sql("CREATE STREAM a (x INT) WITH (kafka_topic='a');\n  INSERT INTO b SELECT x FROM a;").unwrap_or_default();
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1].text, "INSERT INTO b SELECT x FROM a");
        assert_eq!(stmts[1].position, Position { line: 2, column: 3 });
    }

    #[test]
    fn missing_type() {
        assert_eq!(
            err("CREATE STREAM s (event_id KEY) WITH (kafka_topic='x')"),
            "column \"event_id\" has no type (line 1, column 27); write event_id VARCHAR KEY, or another type: INT, BIGINT, DOUBLE, BOOLEAN, VARCHAR, TIMESTAMP(3)"
        );
    }
}
