//! The streaming row-pattern matcher: runs a compiled [`Program`] over the rows of one
//! partition, in event-time order, one row at a time.
//!
//! It is a Pike virtual machine whose threads are kept in SQL:2016 preference order
//! (alternatives left to right, greedy quantifiers preferring more rows, reluctant ones
//! fewer). Each thread carries the rows it has classified so far, because DEFINE may
//! refer to earlier variables (`B.country <> A.country`): as a node of its search's
//! history tree, so threads share their common past and a step copies no history. A
//! step allocates nothing once its [`Scratch`] is warm. When a thread accepts, every
//! thread of lower preference is dropped; the match is final once no thread of higher
//! preference is left. That is exactly the match a backtracking search in preference
//! order finds first (a differential test checks it), without backtracking over rows.
//!
//! Matches are searched from a start row; after a match, `AFTER MATCH SKIP` decides the
//! next start; when no match starts at a row, the search moves to the next row (rows are
//! fed again from the caller's buffer: [`PartitionState::first_needed`] says which rows
//! must still be kept).

use datafusion::common::{HashMap, HashSet};

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

/// No node: the empty history (before a search's first row).
const NO_NODE: u32 = u32::MAX;

/// One classified row of a partial match in its search's history tree: its variable and
/// the node of the row before it ([`NO_NODE`] at the search's first row). Rows are not
/// stored: every partial match of a search classifies each row from the search's start
/// on, so the k-th node of a chain is row `start + k`. Partial matches with a common past
/// share its nodes, so following one more row costs one node, not a copy of the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Node {
    variable: u32,
    parent: u32,
}

/// A partial match: the instruction it waits at and its last classified row's node.
#[derive(Debug, Clone, Copy)]
struct Thread {
    pc: u32,
    history: u32,
}

#[derive(Debug, Clone, Default)]
struct Search {
    start: usize,
    next_row: usize,
    /// Partial matches, in preference order.
    threads: Vec<Thread>,
    /// The history tree of the search's partial matches (append-only while it runs).
    nodes: Vec<Node>,
    /// The preferred match found so far: its last node and last row.
    best: Option<(u32, usize)>,
}

impl Search {
    /// The `(row, variable)` pairs of the history ending at `head`, whose last row is `last`.
    fn rows(&self, head: u32, last: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity((last + 1).saturating_sub(self.start));
        let mut node = head;
        while let Some(n) = self.nodes.get(node as usize) {
            out.push((last - out.len(), n.variable as usize));
            node = n.parent;
        }
        out.reverse();
        out
    }
}

/// The rows a partial match classified before the row DEFINE is asked about, in row
/// order: rows `first_row()..` with their variables. Reading them costs a walk of the
/// history, so the conditions that need only the current row never do.
#[derive(Debug, Clone, Copy)]
pub struct Classified<'s> {
    search: &'s Search,
    head: u32,
    /// The row DEFINE is asked about.
    row: usize,
}

impl Classified<'_> {
    /// The partial match's first row (the search's start), if it has classified any.
    pub fn first_row(&self) -> Option<usize> {
        (self.row > self.search.start).then_some(self.search.start)
    }

    /// The classified `(row, variable)` pairs, in row order.
    pub fn rows(&self) -> Vec<(usize, usize)> {
        if self.head == NO_NODE {
            return Vec::new();
        }
        self.search.rows(self.head, self.row - 1)
    }
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
    /// history tree (8 bytes per node; state-size reporting).
    pub fn heap_bytes(&self) -> usize {
        self.search
            .as_ref()
            .map_or(0, |s| s.threads.capacity() * std::mem::size_of::<Thread>() + s.nodes.capacity() * std::mem::size_of::<Node>())
    }
}

/// Working memory of a [`Matcher`], kept between calls so that a step allocates nothing
/// once warm: one per operator, shared by its partition keys.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The next step's partial matches.
    next: Vec<Thread>,
    /// Instructions a closure has visited: `visited[pc] == stamp`.
    visited: Vec<u32>,
    stamp: u32,
    stack: Vec<u32>,
    /// The step's `(instruction, history)` pairs already given a partial match.
    seen: HashSet<(u32, u32)>,
    /// The step's new nodes by `(variable, parent)`: equal histories get one node, so a
    /// node number identifies a history within its search.
    interned: HashMap<Node, u32>,
    /// Buffers of ended searches, for the next ones.
    spare: Vec<Search>,
}

/// Most ended searches whose buffers [`Scratch`] keeps.
const SPARE_SEARCHES: usize = 8;

impl Scratch {
    fn new_search(&mut self, start: usize) -> Search {
        let mut search = self.spare.pop().unwrap_or_default();
        search.start = start;
        search.next_row = start;
        search.best = None;
        search
    }

    fn recycle(&mut self, mut search: Search) {
        if self.spare.len() < SPARE_SEARCHES {
            search.threads.clear();
            search.nodes.clear();
            self.spare.push(search);
        }
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
    /// `define(variable, row, classified)` says whether `row` may be classified as
    /// `variable` given the rows the partial match classified before it.
    pub fn advance<F, E>(
        &self,
        state: &mut PartitionState,
        scratch: &mut Scratch,
        available: usize,
        finished: E,
        define: &mut F,
    ) -> Vec<Match>
    where
        F: FnMut(usize, usize, Classified<'_>) -> bool,
        E: Fn(usize) -> bool,
    {
        let mut out = Vec::new();
        if scratch.visited.len() < self.program.insts.len() {
            scratch.visited = vec![0; self.program.insts.len()];
            scratch.stamp = 0;
        }
        loop {
            let mut search = match state.search.take() {
                Some(s) => s,
                None => {
                    if state.next_start >= available {
                        break;
                    }
                    let mut search = scratch.new_search(state.next_start);
                    let mut threads = std::mem::take(&mut search.threads);
                    scratch.seen.clear();
                    self.closure(0, NO_NODE, &mut threads, scratch);
                    search.threads = threads;
                    search
                }
            };
            while search.next_row < available && !search.threads.is_empty() {
                self.step(&mut search, scratch, define);
            }
            let done = search.threads.is_empty() || (search.next_row >= available && finished(search.start));
            if !done {
                state.search = Some(search);
                break;
            }
            match search.best {
                Some((head, last)) => {
                    let m = Match { rows: search.rows(head, last) };
                    state.next_start = self.next_start(search.start, &m);
                    out.push(m);
                }
                None => state.next_start = search.start + 1,
            }
            scratch.recycle(search);
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
    fn step<F>(&self, search: &mut Search, scratch: &mut Scratch, define: &mut F)
    where
        F: FnMut(usize, usize, Classified<'_>) -> bool,
    {
        let row = search.next_row;
        let mut next = std::mem::take(&mut scratch.next);
        scratch.seen.clear();
        scratch.interned.clear();
        for i in 0..search.threads.len() {
            let thread = search.threads[i];
            let Some(Inst::Row(v)) = self.program.insts.get(thread.pc as usize).copied() else { continue };
            if !define(v, row, Classified { search, head: thread.history, row }) {
                continue;
            }
            let node = Node { variable: v as u32, parent: thread.history };
            let history = match scratch.interned.get(&node) {
                Some(&h) => h,
                None => {
                    // A search of four billion rows ends there (memory runs out first).
                    let Ok(h) = u32::try_from(search.nodes.len()) else { break };
                    if h == NO_NODE {
                        break;
                    }
                    search.nodes.push(node);
                    scratch.interned.insert(node, h);
                    h
                }
            };
            if let Some(accepted) = self.closure(thread.pc as usize + 1, history, &mut next, scratch) {
                // Preferred over everything after it, and over the earlier candidate
                // (the threads before it had higher preference than that one too).
                search.best = Some((accepted, row));
                break;
            }
        }
        std::mem::swap(&mut search.threads, &mut next);
        next.clear();
        scratch.next = next;
        search.next_row += 1;
    }

    /// Follows jumps and splits from `pc` in preference order; threads waiting for a row
    /// go to `out`, unless the step already has one at that instruction with the same
    /// history (see [`History`]); reaching `Accept` returns the history (lower preference
    /// is cut).
    fn closure(&self, pc: usize, history: u32, out: &mut Vec<Thread>, scratch: &mut Scratch) -> Option<u32> {
        scratch.stamp = scratch.stamp.wrapping_add(1);
        if scratch.stamp == 0 {
            scratch.visited.fill(0);
            scratch.stamp = 1;
        }
        let stamp = scratch.stamp;
        scratch.stack.clear();
        scratch.stack.push(pc as u32);
        while let Some(pc) = scratch.stack.pop() {
            let Some(visited) = scratch.visited.get_mut(pc as usize) else { continue };
            if *visited == stamp {
                continue;
            }
            *visited = stamp;
            match self.program.insts.get(pc as usize).copied() {
                Some(Inst::Row(_)) => {
                    let key = match self.history {
                        History::Classified => (pc, history),
                        History::CurrentRow => (pc, NO_NODE),
                    };
                    if scratch.seen.insert(key) {
                        out.push(Thread { pc, history });
                    }
                }
                Some(Inst::Jump(a)) => scratch.stack.push(a as u32),
                Some(Inst::Split(a, b)) => {
                    // Pushed in reverse: `a` is explored first.
                    scratch.stack.push(b as u32);
                    scratch.stack.push(a as u32);
                }
                Some(Inst::Accept) => return Some(history),
                None => {}
            }
        }
        None
    }
}
