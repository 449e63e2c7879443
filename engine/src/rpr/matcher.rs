//! The streaming row-pattern matcher: runs a compiled [`Program`] over the rows of one
//! partition, in event-time order, one row at a time.
//!
//! It is a Pike virtual machine whose threads are kept in SQL:2016 preference order
//! (alternatives left to right, greedy quantifiers preferring more rows, reluctant ones
//! fewer). Each thread carries the rows it has classified so far, because DEFINE may
//! refer to earlier variables (`B.country <> A.country`). When a thread accepts, every
//! thread of lower preference is dropped; the match is final once no thread of higher
//! preference is left. That is exactly the match a backtracking search in preference
//! order finds first (a differential test checks it), without backtracking over rows.
//!
//! Matches are searched from a start row; after a match, `AFTER MATCH SKIP` decides the
//! next start; when no match starts at a row, the search moves to the next row (rows are
//! fed again from the caller's buffer: [`PartitionState::first_needed`] says which rows
//! must still be kept).

use datafusion::common::HashSet;

use super::nfa::{Inst, Program};

/// `AFTER MATCH SKIP ...` (SQL:2016).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `PAST LAST ROW`: the next match starts after this one (the default).
    PastLastRow,
    /// `TO NEXT ROW`: the next match may start at the row after this match's first.
    ToNextRow,
    /// `TO FIRST v`: at the first row classified as variable `.0`.
    ToFirst(usize),
    /// `TO LAST v`: at the last row classified as variable `.0`.
    ToLast(usize),
}

/// One match: its rows in order, each with its variable (index into the program's variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// `(row, variable)` pairs, in row order.
    pub rows: Vec<(usize, usize)>,
}

impl Match {
    /// The first row of the match.
    #[cfg(test)]
    pub fn first_row(&self) -> usize {
        self.rows.first().map(|r| r.0).unwrap_or(0)
    }

    /// The last row of the match.
    pub fn last_row(&self) -> usize {
        self.rows.last().map(|r| r.0).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
struct Thread {
    pc: usize,
    rows: Vec<(usize, usize)>,
}

#[derive(Debug, Clone)]
struct Search {
    start: usize,
    next_row: usize,
    threads: Vec<Thread>,
    best: Option<Vec<(usize, usize)>>,
}

/// The matcher's state for one partition key.
#[derive(Debug, Clone, Default)]
pub struct PartitionState {
    next_start: usize,
    search: Option<Search>,
}

impl PartitionState {
    /// A state whose next search starts at row `row` (a restored checkpoint: the search
    /// that was in progress there is run again over the same rows).
    pub fn starting_at(row: usize) -> Self {
        PartitionState { next_start: row, search: None }
    }

    /// The first row the matcher may still read; the caller may forget rows before it.
    pub fn first_needed(&self) -> usize {
        self.search.as_ref().map(|s| s.start).unwrap_or(self.next_start)
    }

    /// The first row of the search in progress, if any: WITHIN ends it at that row's
    /// event time plus WITHIN, and only then can it change without new rows.
    pub fn search_start(&self) -> Option<usize> {
        self.search.as_ref().map(|s| s.start)
    }

    /// Partial matches in progress (for state-size reporting).
    pub fn threads(&self) -> usize {
        self.search.as_ref().map(|s| s.threads.len()).unwrap_or(0)
    }

    /// Bytes the search in progress holds on the heap: its partial matches and their
    /// `(row, variable)` pairs, and the best match found so far (state-size reporting).
    pub fn heap_bytes(&self) -> usize {
        let pairs = std::mem::size_of::<(usize, usize)>();
        self.search.as_ref().map_or(0, |s| {
            s.threads.capacity() * std::mem::size_of::<Thread>()
                + s.threads.iter().map(|t| t.rows.capacity() * pairs).sum::<usize>()
                + s.best.as_ref().map_or(0, |b| b.capacity() * pairs)
        })
    }
}

/// What DEFINE can see of a partial match's history, which decides when two partial
/// matches at the same program step are interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// DEFINE reads earlier classified rows (`B.country <> A.country`, `FIRST(A.x)`):
    /// partial matches are kept apart by their classified rows.
    Classified,
    /// DEFINE reads only the current row and rows at fixed distances from it (`PREV`):
    /// at one program step only the preferred partial match is kept (Thompson's NFA
    /// simulation), so a search holds at most one thread per instruction.
    CurrentRow,
}

/// Runs `program` with `skip`.
#[derive(Debug, Clone)]
pub struct Matcher<'p> {
    program: &'p Program,
    skip: Skip,
    history: History,
}

impl<'p> Matcher<'p> {
    /// A matcher of `program` whose DEFINE may read any earlier classified row.
    pub fn new(program: &'p Program, skip: Skip) -> Self {
        Matcher { program, skip, history: History::Classified }
    }

    /// The same matcher, told what DEFINE reads (see [`History`]).
    pub fn with_history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// Feeds rows `..available` (rows are numbered from 0 in event-time order; the
    /// caller keeps those from [`PartitionState::first_needed`]) and returns the matches
    /// that are now final. `finished(start)` says that no row after `available` can
    /// extend a search that started at row `start` (the input ended, or WITHIN has
    /// passed for it): such a search ends with the best match it found, if any.
    /// `define(variable, row, rows_so_far)` says whether `row` may be classified as
    /// `variable` given the rows the partial match classified before it.
    pub fn advance<F, E>(&self, state: &mut PartitionState, available: usize, finished: E, define: &mut F) -> Vec<Match>
    where
        F: FnMut(usize, usize, &[(usize, usize)]) -> bool,
        E: Fn(usize) -> bool,
    {
        let mut out = Vec::new();
        loop {
            let mut search = match state.search.take() {
                Some(s) => s,
                None => {
                    if state.next_start >= available {
                        break;
                    }
                    let start = state.next_start;
                    let mut threads = Vec::new();
                    let mut best = None;
                    self.closure(0, Vec::new(), &mut threads, &mut best, &mut HashSet::new());
                    Search { start, next_row: start, threads, best }
                }
            };
            while search.next_row < available && !search.threads.is_empty() {
                self.step(&mut search, define);
            }
            let done = search.threads.is_empty() || (search.next_row >= available && finished(search.start));
            if !done {
                state.search = Some(search);
                break;
            }
            match search.best {
                Some(rows) => {
                    let m = Match { rows };
                    state.next_start = self.next_start(search.start, &m);
                    out.push(m);
                }
                None => state.next_start = search.start + 1,
            }
        }
        out
    }

    fn next_start(&self, start: usize, m: &Match) -> usize {
        let target = match self.skip {
            Skip::PastLastRow => return m.last_row() + 1,
            Skip::ToNextRow => return start + 1,
            Skip::ToFirst(v) => m.rows.iter().find(|r| r.1 == v).map(|r| r.0),
            Skip::ToLast(v) => m.rows.iter().rev().find(|r| r.1 == v).map(|r| r.0),
        };
        // SQL:2016 makes skipping to a missing variable or to the match's own first row an
        // error; the matcher moves on by one row instead, so it can never loop.
        match target {
            Some(row) if row > start => row,
            _ => start + 1,
        }
    }

    /// Consumes row `search.next_row` with every thread, in preference order.
    fn step<F>(&self, search: &mut Search, define: &mut F)
    where
        F: FnMut(usize, usize, &[(usize, usize)]) -> bool,
    {
        let row = search.next_row;
        let mut next = Vec::with_capacity(search.threads.len());
        let mut seen = HashSet::new();
        for thread in std::mem::take(&mut search.threads) {
            let Some(Inst::Row(v)) = self.program.insts.get(thread.pc).copied() else { continue };
            if !define(v, row, &thread.rows) {
                continue;
            }
            let mut rows = thread.rows;
            rows.push((row, v));
            let mut accepted = None;
            self.closure(thread.pc + 1, rows, &mut next, &mut accepted, &mut seen);
            if accepted.is_some() {
                // Preferred over everything after it, and over the earlier candidate
                // (the threads before it had higher preference than that one too).
                search.best = accepted;
                break;
            }
        }
        search.threads = next;
        search.next_row += 1;
    }

    /// What tells two partial matches at one instruction apart (see [`History`]).
    fn history_key(&self, rows: &[(usize, usize)]) -> Vec<(usize, usize)> {
        match self.history {
            History::Classified => rows.to_vec(),
            History::CurrentRow => Vec::new(),
        }
    }

    /// Follows jumps and splits from `pc` in preference order; threads waiting for a row
    /// go to `out`; reaching `Accept` records the match and stops (lower preference is cut).
    fn closure(
        &self,
        pc: usize,
        rows: Vec<(usize, usize)>,
        out: &mut Vec<Thread>,
        accepted: &mut Option<Vec<(usize, usize)>>,
        seen: &mut HashSet<(usize, Vec<(usize, usize)>)>,
    ) {
        let mut stack = vec![pc];
        let mut visited = HashSet::new();
        while let Some(pc) = stack.pop() {
            if accepted.is_some() || !visited.insert(pc) {
                continue;
            }
            match self.program.insts.get(pc).copied() {
                Some(Inst::Row(_)) if seen.insert((pc, self.history_key(&rows))) => out.push(Thread { pc, rows: rows.clone() }),
                Some(Inst::Row(_)) => {}
                Some(Inst::Jump(a)) => stack.push(a),
                Some(Inst::Split(a, b)) => {
                    // Pushed in reverse: `a` is explored first.
                    stack.push(b);
                    stack.push(a);
                }
                Some(Inst::Accept) => *accepted = Some(rows.clone()),
                None => {}
            }
        }
    }
}
