//! PATTERN compiled to a program for a Pike-style virtual machine (Thompson's
//! construction with ordered alternatives), the NFA of the MATCH_RECOGNIZE of docs/DESIGN.md.
//!
//! Instructions: `Row(v)` consumes one row classified as variable `v` (if its DEFINE
//! holds), `Split(a, b)` continues at `a` first and at `b` second (the order is SQL:2016's
//! preference: left alternative, and more repetitions for greedy / fewer for reluctant
//! quantifiers), `Jump(a)`, and `Accept`. Bounded quantifiers `{n,m}` are unrolled.

use std::fmt;

use crate::error::SqlError;
use crate::sql::pattern::Pattern;

/// Most instructions a compiled pattern may have (bounded quantifiers are unrolled).
pub const MAX_INSTRUCTIONS: usize = 10_000;

/// One instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inst {
    /// Consume one row as pattern variable `.0` (index into [`Program::variables`]).
    Row(usize),
    /// Continue at `.0` first, then at `.1`.
    Split(usize, usize),
    /// Continue at `.0`.
    Jump(usize),
    /// A complete match.
    Accept,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The instructions; execution starts at 0.
    pub insts: Vec<Inst>,
    /// Pattern variables by index, in order of first appearance.
    pub variables: Vec<String>,
}

impl Program {
    /// Compiles `pattern`.
    ///
    /// Errors: a pattern (or a quantified part of it) that can match no rows (SQL:2016
    /// allows empty matches; Flink and Eddy do not), or one too large once unrolled.
    pub fn compile(pattern: &Pattern) -> Result<Program, SqlError> {
        if can_be_empty(pattern) {
            return Err(SqlError::new(format!("PATTERN {pattern} can match no rows"))
                .hint("make at least one variable mandatory, e.g. A+ instead of A*"));
        }
        if let Some(part) = empty_repeat(pattern) {
            return Err(SqlError::new(format!("the quantified part {part} of PATTERN can match no rows"))
                .hint("quantify only parts that match at least one row, e.g. (A B?)* rather than (A? B?)*"));
        }
        let variables = pattern.variables();
        let mut c = Compiler { insts: Vec::new(), variables: &variables };
        c.emit(pattern)?;
        c.push(Inst::Accept)?;
        Ok(Program { insts: c.insts, variables })
    }
}

/// Whether `p` can match zero rows.
fn can_be_empty(p: &Pattern) -> bool {
    match p {
        Pattern::Var(_) => false,
        Pattern::Concat(parts) => parts.iter().all(can_be_empty),
        Pattern::Alt(parts) => parts.iter().any(can_be_empty),
        Pattern::Repeat { inner, min, .. } => *min == 0 || can_be_empty(inner),
    }
}

/// A quantified sub-pattern whose body can match zero rows (its iterations would be
/// empty: SQL:2016 has special rules for them; Eddy refuses them).
fn empty_repeat(p: &Pattern) -> Option<&Pattern> {
    match p {
        Pattern::Var(_) => None,
        Pattern::Concat(parts) | Pattern::Alt(parts) => parts.iter().find_map(empty_repeat),
        Pattern::Repeat { inner, max, .. } => {
            if can_be_empty(inner) && *max != Some(1) {
                Some(p)
            } else {
                empty_repeat(inner)
            }
        }
    }
}

struct Compiler<'a> {
    insts: Vec<Inst>,
    variables: &'a [String],
}

impl Compiler<'_> {
    fn push(&mut self, inst: Inst) -> Result<usize, SqlError> {
        if self.insts.len() >= MAX_INSTRUCTIONS {
            return Err(SqlError::new(format!("PATTERN is too large: more than {MAX_INSTRUCTIONS} steps once {{n,m}} are unrolled"))
                .hint("use smaller bounds, or * and + instead of large {n,m}"));
        }
        self.insts.push(inst);
        Ok(self.insts.len() - 1)
    }

    fn patch(&mut self, at: usize, inst: Inst) {
        if let Some(slot) = self.insts.get_mut(at) {
            *slot = inst;
        }
    }

    fn emit(&mut self, p: &Pattern) -> Result<(), SqlError> {
        match p {
            Pattern::Var(v) => {
                let index = self.variables.iter().position(|x| x == v).unwrap_or(0);
                self.push(Inst::Row(index))?;
            }
            Pattern::Concat(parts) => {
                for part in parts {
                    self.emit(part)?;
                }
            }
            Pattern::Alt(parts) => {
                // Split(first, next) chains; every branch jumps to the end.
                let mut jumps = Vec::new();
                for (i, part) in parts.iter().enumerate() {
                    if i + 1 < parts.len() {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(part)?;
                        jumps.push(self.push(Inst::Jump(0))?);
                        let next = self.insts.len();
                        self.patch(split, Inst::Split(split + 1, next));
                    } else {
                        self.emit(part)?;
                    }
                }
                let end = self.insts.len();
                for j in jumps {
                    self.patch(j, Inst::Jump(end));
                }
            }
            Pattern::Repeat { inner, min, max, greedy } => {
                for _ in 0..*min {
                    self.emit(inner)?;
                }
                match max {
                    None => {
                        // L: Split(body, out) ; body ; Jump L
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(inner)?;
                        self.push(Inst::Jump(split))?;
                        let out = self.insts.len();
                        self.patch(split, if *greedy { Inst::Split(split + 1, out) } else { Inst::Split(out, split + 1) });
                    }
                    Some(max) => {
                        // (max - min) optional copies, each one skipping to the end.
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split(0, 0))?);
                            self.emit(inner)?;
                        }
                        let out = self.insts.len();
                        for s in splits {
                            self.patch(s, if *greedy { Inst::Split(s + 1, out) } else { Inst::Split(out, s + 1) });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Program {
    /// One instruction per line, `pc: instruction` (EXPLAIN).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, inst) in self.insts.iter().enumerate() {
            match inst {
                Inst::Row(v) => writeln!(f, "{pc}: row {}", self.variables.get(*v).map(String::as_str).unwrap_or("?"))?,
                Inst::Split(a, b) => writeln!(f, "{pc}: split {a}, {b}")?,
                Inst::Jump(a) => writeln!(f, "{pc}: jump {a}")?,
                Inst::Accept => writeln!(f, "{pc}: accept")?,
            }
        }
        Ok(())
    }
}
