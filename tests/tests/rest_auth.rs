//! `eddy server` with `--basic-auth-file`: every endpoint but `/healthcheck` needs
//! credentials from the file.

use eddy_e2e::*;
use serde_json::json;

/// With `--basic-auth-file`, requests need credentials from the file (401 otherwise).
#[test]
fn basic_auth_guards_every_endpoint_but_healthcheck() {
    let dir = scratch_dir("eddy-rest-auth");
    let users = dir.join("users");
    std::fs::write(&users, "# user:password\nalice:s3cret\nbob: two words \n").unwrap_or_else(|e| panic!("{e}"));
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
    assert_eq!(status(Some("basic YWxpY2U6czNjcmV0")), 200, "the scheme is case-insensitive (RFC 7617)");
    assert_eq!(status(Some("Basic Ym9iOiB0d28gd29yZHMg")), 200); // "bob: two words ": never trimmed
    assert_eq!(status(Some("Basic Ym9iOnR3byB3b3Jkcw==")), 401); // "bob:two words"
    assert_eq!(server.get("/healthcheck").0, 200);

    // A line without a password is an error at start, not an account with an empty one.
    let bad = dir.join("bad-users");
    std::fs::write(&bad, "alice:s3cret\ncarol\n").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(eddy_bin())
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port()), "--basic-auth-file"])
        .arg(&bad)
        .arg("--state-dir")
        .arg(dir.join("state2"))
        .output()
        .unwrap_or_else(|e| panic!("eddy server: {e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}: line 2: expected user:password with both parts", bad.display())), "{stderr}");
}
