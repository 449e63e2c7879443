//! Golden parser and planner tests: each `golden/*.sql` file holds cases separated by
//! lines of `----`. In `parse_*.sql` files every case is only parsed and its output is
//! the parsed statement (or the exact error); in the others every case is parsed and
//! planned against the catalog left by the successful cases before it, and its output is
//! the plan (or the exact error). Outputs must equal the matching `golden/*.out` file. `EDDY_UPDATE_GOLDEN=1 cargo test --workspace` rewrites
//! the `.out` files; review their diff before committing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eddy_engine::sql::parser::parse_sql;
use eddy_engine::{Engine, Script};

fn render_parse(text: &str) -> String {
    let mut out = String::new();
    for case in text.split("\n----\n").map(str::trim).filter(|c| !c.is_empty()) {
        let _ = writeln!(out, "{case}\n=>");
        match parse_sql(case) {
            Ok(statements) => {
                for s in statements {
                    let _ = writeln!(out, "{}", s.statement);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
            }
        }
        out.push_str("----\n");
    }
    out
}

fn render(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    if file.file_name().is_some_and(|n| n.to_string_lossy().starts_with("parse_")) {
        return render_parse(&text);
    }
    let engine = Engine::new(None, "golden");
    let mut accepted: Vec<Script> = Vec::new();
    let mut out = String::new();
    for case in text.split("\n----\n").map(str::trim).filter(|c| !c.is_empty()) {
        let before = engine.plan(&accepted).map(|p| p.statements.len()).unwrap_or(0);
        let mut scripts = accepted.clone();
        scripts.push(Script { name: "case".into(), sql: case.to_string() });
        let _ = writeln!(out, "{case}\n=>");
        match engine.plan(&scripts) {
            Ok(plan) => {
                for statement in &plan.statements[before..] {
                    let _ = writeln!(out, "{statement}");
                }
                accepted.push(Script { name: "case".into(), sql: case.to_string() });
            }
            Err(e) => {
                let _ = writeln!(out, "error: {}", e.error);
            }
        }
        out.push_str("----\n");
    }
    out
}

#[test]
fn golden_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "golden files missing in {}", dir.display());
    let update = std::env::var_os("EDDY_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for file in files {
        let got = render(&file);
        let expected_path = file.with_extension("out");
        if update {
            std::fs::write(&expected_path, &got).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{} differs:\n--- expected\n{expected}\n--- got\n{got}", expected_path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
