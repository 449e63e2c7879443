//! The NFA matcher against a deliberately simple backtracking matcher: random patterns
//! over three variables (concatenation, alternation, groups, greedy and reluctant
//! quantifiers) on random rows, under every AFTER MATCH SKIP mode. Both must find the same
//! matches, row for row. One DEFINE refers to an earlier variable, as the fraud rule does.

use super::matcher::{Classified, History, Match, Matcher, PartitionState, Scratch, Skip};
use super::nfa::Program;
use crate::sql::pattern::Pattern;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VARS: [&str; 3] = ["x", "y", "z"];

/// What to do after a part matched: given the next row and the rows classified so far,
/// whether the rest of the pattern matched too.
type Continuation<'a> = dyn FnMut(usize, &mut Vec<(usize, usize)>) -> bool + 'a;

/// DEFINE: x = letter 'a'; y = letter 'b' or 'c'; z = the letter of the last x so far
/// (any letter when no x has been classified yet).
fn define(var: usize, row: usize, before: &[(usize, usize)], input: &[u8]) -> bool {
    let letter = input[row];
    match var {
        0 => letter == b'a',
        1 => letter == b'b' || letter == b'c',
        _ => match before.iter().rev().find(|(_, v)| *v == 0) {
            Some((r, _)) => input[*r] == letter || letter == b'c',
            None => true,
        },
    }
}

fn random_pattern(rng: &mut StdRng, depth: u32) -> Pattern {
    if depth == 0 {
        return Pattern::Var(VARS[rng.random_range(0..3)].to_string());
    }
    match rng.random_range(0..5) {
        0 | 1 => Pattern::Var(VARS[rng.random_range(0..3)].to_string()),
        2 => Pattern::Concat((0..rng.random_range(2..4)).map(|_| random_pattern(rng, depth - 1)).collect()),
        3 => Pattern::Alt((0..rng.random_range(2..4)).map(|_| random_pattern(rng, depth - 1)).collect()),
        _ => {
            let (min, max) = match rng.random_range(0..6) {
                0 => (0, None),
                1 => (1, None),
                2 => (0, Some(1)),
                3 => (2, Some(2)),
                4 => (1, Some(3)),
                _ => (2, None),
            };
            let inner = random_pattern(rng, depth - 1);
            Pattern::Repeat { inner: Box::new(inner), min, max, greedy: rng.random_bool(0.5) }
        }
    }
}

/// Backtracking: tries the alternatives of `p` from `pos` in preference order and calls
/// `k` after each way `p` can match; stops at the first `k` that succeeds.
fn bt(p: &Pattern, vars: &[String], pos: usize, rows: &mut Vec<(usize, usize)>, input: &[u8], k: &mut Continuation<'_>) -> bool {
    match p {
        Pattern::Var(v) => {
            let var = vars.iter().position(|x| x == v).unwrap_or(0);
            if pos < input.len() && define(var, pos, rows, input) {
                rows.push((pos, var));
                if k(pos + 1, rows) {
                    return true;
                }
                rows.pop();
            }
            false
        }
        Pattern::Concat(parts) => concat(parts, vars, pos, rows, input, k),
        Pattern::Alt(parts) => parts.iter().any(|part| bt(part, vars, pos, rows, input, k)),
        Pattern::Repeat { inner, min, max, greedy } => repeat(inner, *min, *max, *greedy, 0, vars, pos, rows, input, k),
    }
}

fn concat(parts: &[Pattern], vars: &[String], pos: usize, rows: &mut Vec<(usize, usize)>, input: &[u8], k: &mut Continuation<'_>) -> bool {
    match parts.split_first() {
        None => k(pos, rows),
        Some((first, rest)) => bt(first, vars, pos, rows, input, &mut |p, r| concat(rest, vars, p, r, input, k)),
    }
}

#[allow(clippy::too_many_arguments)]
fn repeat(
    inner: &Pattern,
    min: u32,
    max: Option<u32>,
    greedy: bool,
    count: u32,
    vars: &[String],
    pos: usize,
    rows: &mut Vec<(usize, usize)>,
    input: &[u8],
    k: &mut Continuation<'_>,
) -> bool {
    let can_stop = count >= min;
    let can_go = max.is_none_or(|m| count < m);
    if greedy {
        if can_go
            && bt(inner, vars, pos, rows, input, &mut |p, r| p > pos && repeat(inner, min, max, greedy, count + 1, vars, p, r, input, k))
        {
            return true;
        }
        can_stop && k(pos, rows)
    } else {
        if can_stop && k(pos, rows) {
            return true;
        }
        can_go && bt(inner, vars, pos, rows, input, &mut |p, r| p > pos && repeat(inner, min, max, greedy, count + 1, vars, p, r, input, k))
    }
}

fn reference(p: &Pattern, vars: &[String], input: &[u8], skip: Skip) -> Vec<Match> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let mut found = None;
        bt(p, vars, start, &mut Vec::new(), input, &mut |_, rows| {
            found = Some(rows.clone());
            true
        });
        match found {
            Some(rows) => {
                let m = Match { rows };
                let target = match skip {
                    Skip::PastLastRow => Some(m.last_row() + 1),
                    Skip::ToNextRow => Some(start + 1),
                    Skip::ToFirst(v) => m.rows.iter().find(|r| r.1 == v).map(|r| r.0),
                    Skip::ToLast(v) => m.rows.iter().rev().find(|r| r.1 == v).map(|r| r.0),
                };
                start = match (skip, target) {
                    (Skip::PastLastRow | Skip::ToNextRow, Some(t)) => t,
                    (_, Some(t)) if t > start => t,
                    _ => start + 1,
                };
                out.push(m);
            }
            None => start += 1,
        }
    }
    out
}

#[test]
fn nfa_matcher_equals_backtracking_on_10000_random_cases() {
    let mut rng = StdRng::seed_from_u64(20261122);
    let mut cases = 0;
    let mut matches = 0;
    // One working memory for every case, as an operator shares one between its keys.
    let mut scratch = Scratch::default();
    while cases < 10_000 {
        let pattern = random_pattern(&mut rng, 3);
        let Ok(program) = Program::compile(&pattern) else { continue };
        let len = rng.random_range(0..14);
        let input: Vec<u8> = (0..len).map(|_| b"abc"[rng.random_range(0..3)]).collect();
        let x = program.variables.iter().position(|v| v == "x");
        let skips: Vec<Skip> =
            [Some(Skip::PastLastRow), Some(Skip::ToNextRow), x.map(Skip::ToFirst), x.map(Skip::ToLast)].into_iter().flatten().collect();
        for skip in skips {
            let want = reference(&pattern, &program.variables, &input, skip);
            // Feed the rows one at a time, as a stream would.
            // Only the third variable's DEFINE reads earlier rows: without it, the
            // matcher may keep one partial match per instruction.
            let mut histories = vec![History::Classified];
            if program.variables.len() < 3 {
                histories.push(History::CurrentRow);
            }
            for history in histories {
                let matcher = Matcher::new(&program, skip).with_history(history);
                let mut state = PartitionState::default();
                let mut got = Vec::new();
                let mut define = |v: usize, row: usize, before: Classified<'_>| define(v, row, &before.rows(), &input);
                for available in 1..=input.len() {
                    got.extend(matcher.advance(&mut state, &mut scratch, available, |_| false, &mut define));
                }
                got.extend(matcher.advance(&mut state, &mut scratch, input.len(), |_| true, &mut define));
                assert_eq!(
                    got,
                    want,
                    "pattern {pattern}, input {:?}, skip {skip:?}, {history:?}\n{program}",
                    String::from_utf8_lossy(&input)
                );
                matches += got.len();
            }
            cases += 1;
        }
    }
    assert!(matches > 10_000, "the cases must find matches to compare ({matches})");
}

#[test]
fn fraud_pattern_first_login_from_another_country() {
    // PATTERN (A N*? B): A login, any non-log-out rows, B a login from another country.
    let pattern = Pattern::Concat(vec![
        Pattern::Var("a".into()),
        Pattern::Repeat { inner: Box::new(Pattern::Var("n".into())), min: 0, max: None, greedy: false },
        Pattern::Var("b".into()),
    ]);
    let program = Program::compile(&pattern).unwrap_or_else(|e| panic!("{e}"));
    // (event type, country)
    let rows = [("login", "RU"), ("click", "RU"), ("login", "RU"), ("login", "US"), ("login", "DE"), ("log-out", "DE"), ("login", "FR")];
    let mut define = |v: usize, row: usize, before: Classified<'_>| match program.variables[v].as_str() {
        "a" => rows[row].0 == "login",
        "n" => rows[row].0 != "log-out",
        _ => rows[row].0 == "login" && before.rows().iter().find(|(_, v)| *v == 0).is_some_and(|(r, _)| rows[*r].1 != rows[row].1),
    };
    let matcher = Matcher::new(&program, Skip::PastLastRow);
    let mut state = PartitionState::default();
    let got = matcher.advance(&mut state, &mut Scratch::default(), rows.len(), |_| true, &mut define);
    // The reluctant N*? stops at the first login from another country: rows 0..=3; the
    // next search starts at 4 (DE), and the log-out at 5 ends it before FR.
    let spans: Vec<(usize, usize)> = got.iter().map(|m| (m.first_row(), m.last_row())).collect();
    assert_eq!(spans, [(0, 3)]);
    assert_eq!(got[0].rows, [(0, 0), (1, 1), (2, 1), (3, 2)]);
}
