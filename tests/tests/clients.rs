//! ksqlDB's client libraries against `eddy server`: the PyPI `ksqldb` client, which
//! speaks HTTP/2 (prior knowledge) to `/query-stream` and `/inserts-stream`, runs a
//! CREATE, an insert, a push query with LIMIT, a DESCRIBE and SHOW PROPERTIES
//! (`tests/clients/ksqldb_client.py`). `.ci/run` installs the client and sets
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
