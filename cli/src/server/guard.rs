//! What stands between the network and the engine: HTTP Basic credentials, the slowdown
//! of repeated failures, and the checks that keep a web page from driving a server on
//! the user's machine (a `Host` that is not the server's, a body that is not JSON).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// The accepted `user:password` pairs of `--basic-auth-file`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pairs: Vec<(String, String)>,
}

impl Credentials {
    /// Reads `path`: one `user:password` per line; empty lines and lines starting with `#`
    /// are skipped. Nothing is trimmed: a password may start or end with spaces.
    ///
    /// Errors: the file cannot be read, holds no pair, or a line lacks a user or a
    /// password (named by its number).
    pub fn read(path: &Path) -> anyhow::Result<Credentials> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Credentials::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Credentials, String> {
        let mut pairs = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => pairs.push((user.to_string(), password.to_string())),
                _ => return Err(format!("line {}: expected user:password with both parts", i + 1)),
            }
        }
        if pairs.is_empty() {
            return Err("holds no user:password line".into());
        }
        Ok(Credentials { pairs })
    }

    /// Whether an `Authorization` header value carries accepted credentials: the `Basic`
    /// scheme in any case (RFC 7617), then base64 of `user:password`, compared in time
    /// independent of where they differ.
    pub fn accepts(&self, header: &str) -> bool {
        let Some((scheme, token)) = header.trim().split_once(char::is_whitespace) else { return false };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else { return false };
        let Some(split) = decoded.iter().position(|&b| b == b':') else { return false };
        let (user, password) = (&decoded[..split], &decoded[split + 1..]);
        let mut found = false;
        for (u, p) in &self.pairs {
            found |= constant_time_eq(u.as_bytes(), user) & constant_time_eq(p.as_bytes(), password);
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Slows down a client that keeps failing authentication: its n-th failure in a row is
/// answered after `min(100 ms × 2^(n-1), 5 s)`, a success forgets it.
#[derive(Debug, Default)]
pub struct FailureDelay {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// The longest wait before a 401.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

impl FailureDelay {
    /// Records a failure of `client`; returns how long to wait before answering.
    pub fn failed(&self, client: IpAddr) -> Duration {
        let Ok(mut failures) = self.failures.lock() else { return MAX_DELAY };
        let now = Instant::now();
        failures.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
        let entry = failures.entry(client).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Duration::from_millis(100u64.saturating_mul(1 << (entry.0 - 1).min(10))).min(MAX_DELAY)
    }

    /// Forgets the failures of `client`.
    pub fn succeeded(&self, client: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&client);
        }
    }
}

/// Whether a request's `Host` header names this server: an IP address, `localhost`, or
/// a name given with `--server-name`. A page on another site that makes the browser
/// resolve its own name to this machine (DNS rebinding) sends its own name, and is
/// refused. No header (HTTP/1.0) is accepted.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else { return true };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host }),
    };
    name.parse::<IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Whether a request body's `Content-Type` is JSON (`application/json`, ksqlDB's
/// `application/vnd.ksql.v1+json`, any `+json`) or absent. A browser sends `text/plain`,
/// form and multipart bodies across sites without asking the server first; JSON needs
/// a CORS preflight, which this server never grants.
pub fn json_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else { return true };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        // ksqlDB's clients send their delimited JSON lines (inserts) with this type.
        || essence == "application/vnd.ksqlapi.delimited.v1"
}

/// The peer's address, when the server was started with connection info.
pub fn client_ip(request: &axum::extract::Request) -> Option<IpAddr> {
    request.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }

    #[test]
    fn credentials_keep_spaces_take_any_scheme_case_and_refuse_half_lines() {
        let c = Credentials::parse("# users\nalice: s3cret \r\n\nbob:pw\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.accepts(&basic("alice: s3cret ")));
        assert!(!c.accepts(&basic("alice:s3cret")), "the password is not trimmed");
        assert!(c.accepts(&basic("bob:pw").replace("Basic", "bAsIc")));
        assert!(!c.accepts(&basic("bob:pwx")));
        assert!(!c.accepts("Bearer x"));
        assert!(!c.accepts("Basic !!!"));
        assert_eq!(Credentials::parse("alice\n").err().as_deref(), Some("line 1: expected user:password with both parts"));
        assert_eq!(Credentials::parse("# x\nalice:\n").err().as_deref(), Some("line 2: expected user:password with both parts"));
        assert_eq!(Credentials::parse("# nobody\n").err().as_deref(), Some("holds no user:password line"));
    }

    #[test]
    fn repeated_failures_wait_longer_up_to_five_seconds() {
        let d = FailureDelay::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let waits: Vec<u128> = (0..8).map(|_| d.failed(ip).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        d.succeeded(ip);
        assert_eq!(d.failed(ip).as_millis(), 100);
    }

    #[test]
    fn hosts_and_content_types() {
        assert!(host_allowed(Some("127.0.0.1:8088"), &[]));
        assert!(host_allowed(Some("[::1]:8088"), &[]));
        assert!(host_allowed(Some("LOCALHOST:8088"), &[]));
        assert!(!host_allowed(Some("attacker.example:8088"), &[]));
        assert!(host_allowed(Some("eddy.internal"), &["eddy.internal".into()]));
        assert!(json_content_type(Some("application/vnd.ksql.v1+json; charset=utf-8")));
        assert!(json_content_type(Some("Application/JSON")));
        assert!(json_content_type(None));
        assert!(!json_content_type(Some("text/plain;charset=UTF-8")));
        assert!(!json_content_type(Some("application/x-www-form-urlencoded")));
    }
}
