//! ksqlDB's client libraries against `eddy server`: the PyPI `ksqldb` client and the npm
//! `ksqldb-client`, which speak HTTP/2 (prior knowledge) to `/query-stream` and
//! `/inserts-stream`, run a CREATE, inserts, a push query with LIMIT and a DESCRIBE
//! (`tests/clients/ksqldb_client.py`, `tests/clients/npm_client.js`). `.ci/run` installs the client and sets
//! `EDDY_REQUIRE_CLIENTS`, under which a missing client fails the test; elsewhere the
//! test says how to install it and passes.

use std::process::Command;

use eddy_e2e::*;

#[test]
fn python_ksqldb_client_works() {
    let importable = Command::new("python3").args(["-c", "import ksqldb"]).output().is_ok_and(|o| o.status.success());
    if !importable {
        assert!(
            std::env::var_os("EDDY_REQUIRE_CLIENTS").is_none(),
            "the ksqldb Python client is missing: .ci/run installs it (python3 -m pip install ksqldb)"
        );
        eprintln!("skipped: python3 -m pip install ksqldb requests to run it");
        return;
    }
    let state = scratch_dir("eddy-clients").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("clients"))]);
    let script = repo_root().join("tests/clients/ksqldb_client.py");
    let out =
        Command::new("python3").arg(&script).arg(&server.url).arg(unique("clients")).output().unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ksqldb client: ok");
}

#[test]
fn npm_ksqldb_client_works() {
    let dir = repo_root().join("tests/clients");
    let installed =
        dir.join("node_modules/ksqldb-client").exists() && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("EDDY_REQUIRE_CLIENTS").is_none(),
            "the npm ksqldb-client is missing: .ci/run installs it (npm install --prefix tests/clients ksqldb-client@1.0.5)"
        );
        eprintln!("skipped: npm install --prefix tests/clients ksqldb-client@1.0.5 to run it");
        return;
    }
    let state = scratch_dir("eddy-npm-clients").join("state");
    let server = Server::start(&state, &[("EDDY_APPLICATION_ID", &unique("npm-clients"))]);
    let (host, port) = server.url.rsplit_once(':').unwrap_or_else(|| panic!("no port in {}", server.url));
    let out = Command::new("node")
        .arg(dir.join("npm_client.js"))
        .args([host, port, &unique("npm-clients")])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        out.status.success(),
        "{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "npm ksqldb-client: ok");
}
