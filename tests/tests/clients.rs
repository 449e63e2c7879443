//! ksqlDB's client libraries against `eddy server`: the PyPI `ksqldb` client and the npm
//! `ksqldb-client`, which speak HTTP/2 (prior knowledge) to `/query-stream` and
//! `/inserts-stream`, run a CREATE, inserts, a push query with LIMIT and a DESCRIBE
//! (`tests/clients/ksqldb_client.py`, `tests/clients/npm_client.js`); the PyPI `ksql`
//! client (ksql-python), which asks for an h2c upgrade and reads `/query` line by line
//! with `return_objects=True` (`tests/clients/ksql_python_client.py`). `.ci/run`
//! installs the clients and sets `EDDY_REQUIRE_CLIENTS`, under which a missing client
//! fails the test; elsewhere the test says how to install it and passes.

use std::process::{Command, Output};

use eddy_e2e::*;

/// Whether the client can run; when it cannot, fails under `EDDY_REQUIRE_CLIENTS` and
/// otherwise says how to install it.
fn available(installed: bool, what: &str, install: &str) -> bool {
    if !installed {
        assert!(std::env::var_os("EDDY_REQUIRE_CLIENTS").is_none(), "the {what} is missing: .ci/run installs it ({install})");
        eprintln!("skipped: {install} to run it");
    }
    installed
}

/// Checks the client script's outcome: it succeeded and printed exactly `ok_line`.
fn check(out: Output, ok_line: &str, server: &Server) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}\nserver log:\n{}", String::from_utf8_lossy(&out.stderr), server.log_text());
    assert_eq!(stdout.trim(), ok_line);
}

#[test]
fn python_ksqldb_client_works() {
    let importable = Command::new("python3").args(["-c", "import ksqldb"]).output().is_ok_and(|o| o.status.success());
    if !available(importable, "ksqldb Python client", "python3 -m pip install ksqldb requests") {
        return;
    }
    let server = Server::start(&scratch_dir("eddy-clients").join("state"), &[("EDDY_APPLICATION_ID", &unique("clients"))]);
    let script = repo_root().join("tests/clients/ksqldb_client.py");
    let out =
        Command::new("python3").arg(&script).arg(&server.url).arg(unique("clients")).output().unwrap_or_else(|e| panic!("python3: {e}"));
    check(out, "ksqldb client: ok", &server);
}

/// ksql-python lives in `tests/clients/ksql-python` (`pip install --target`): its
/// dependencies (hyper 0.7, h2 2.x) conflict with the `ksqldb` client's.
#[test]
fn python_ksql_client_works() {
    let lib = repo_root().join("tests/clients/ksql-python");
    if !available(
        lib.join("ksql").exists(),
        "PyPI ksql client",
        "python3 -m pip install --no-build-isolation --target tests/clients/ksql-python ksql==0.10.2",
    ) {
        return;
    }
    let server = Server::start(&scratch_dir("eddy-ksql-python").join("state"), &[("EDDY_APPLICATION_ID", &unique("ksql-python"))]);
    let out = Command::new("python3")
        .arg(repo_root().join("tests/clients/ksql_python_client.py"))
        .arg(&server.url)
        .arg(unique("ksql-python"))
        .env("PYTHONPATH", &lib)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    check(out, "ksql client: ok", &server);
}

#[test]
fn npm_ksqldb_client_works() {
    let dir = repo_root().join("tests/clients");
    let installed =
        dir.join("node_modules/ksqldb-client").exists() && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !available(installed, "npm ksqldb-client", "npm install --prefix tests/clients ksqldb-client@1.0.5") {
        return;
    }
    let server = Server::start(&scratch_dir("eddy-npm-clients").join("state"), &[("EDDY_APPLICATION_ID", &unique("npm-clients"))]);
    let (host, port) = server.url.rsplit_once(':').unwrap_or_else(|| panic!("no port in {}", server.url));
    let out = Command::new("node")
        .arg(dir.join("npm_client.js"))
        .args([host, port, &unique("npm-clients")])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    check(out, "npm ksqldb-client: ok", &server);
}
