//! `eddy server` with `--basic-auth-file`: every endpoint but `/healthcheck` needs
//! credentials from the file.

use eddy_e2e::*;
use serde_json::json;

/// With `--basic-auth-file`, requests need credentials from the file (401 otherwise).
#[test]
fn basic_auth_guards_every_endpoint_but_healthcheck() {
    let dir = scratch_dir("eddy-rest-auth");
    let users = dir.join("users");
    std::fs::write(&users, "# user:password\nalice:s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    let users = users.display().to_string();
    let server = Server::start_with(&dir.join("state"), &[], &["--basic-auth-file", &users]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let status = |auth: Option<&str>| {
        let mut request = agent.post(&format!("{}/ksql", server.url));
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        request.send_json(json!({"ksql": "SHOW STREAMS;"})).map(|r| r.status().as_u16()).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(status(None), 401);
    assert_eq!(status(Some("Basic YWxpY2U6d3Jvbmc=")), 401); // alice:wrong
    assert_eq!(status(Some("Basic YWxpY2U6czNjcmV0")), 200); // alice:s3cret
    assert_eq!(server.get("/healthcheck").0, 200);
}
