//! What statements may reach when Eddy serves clients it does not trust (`eddy server`):
//! the directories a `filesystem` source or sink may use (`--allow-path`) and the hosts a
//! statement may name for Kafka or PostgreSQL (`--allow-host`). `eddy run` and the
//! embedded shell have no sandbox: their files and hosts are their user's own.
//!
//! Paths are resolved (links followed) before they are compared, and a source must be a
//! regular file: a FIFO, a device or a socket would block or leak. The checks run when a
//! relation is created (a clear error for the statement) and again when a query opens it.

use std::path::{Path, PathBuf};

use crate::error::{ConnectorError, Result};

/// The limits of a sandboxed engine.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    /// Directories (resolved) under which files may be read and written; none: no file.
    paths: Vec<PathBuf>,
    /// Host patterns: `host`, `host:port`, or `*.domain`.
    hosts: Vec<String>,
}

impl Sandbox {
    /// A sandbox allowing files under `paths` and the hosts matching `hosts`.
    ///
    /// Errors: an allowed directory does not exist or is not a directory.
    pub fn new(paths: &[PathBuf], hosts: Vec<String>) -> Result<Sandbox> {
        let mut resolved = Vec::with_capacity(paths.len());
        for p in paths {
            let dir = p.canonicalize().map_err(|source| ConnectorError::File { path: p.display().to_string(), source })?;
            if !dir.is_dir() {
                return Err(ConnectorError::Config(format!("--allow-path {}: not a directory", p.display())));
            }
            if dir == Path::new("/") {
                return Err(ConnectorError::Config("--allow-path /: would allow every file; name a directory for the data".into()));
            }
            resolved.push(dir);
        }
        Ok(Sandbox { paths: resolved, hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect() })
    }

    fn refused(what: &str, detail: String) -> ConnectorError {
        ConnectorError::NotAllowed(format!("{what} is not allowed on this server: {detail}"))
    }

    /// Checks one `host[:port]` (IPv6 in brackets) against the allowed patterns.
    ///
    /// Errors: no pattern matches; the message names the host and the flag to add.
    pub fn check_host(&self, endpoint: &str, what: &str) -> Result<()> {
        let endpoint = endpoint.trim().to_ascii_lowercase();
        let (host, port) = split_host_port(&endpoint);
        let ok = self.hosts.iter().any(|pattern| {
            let (p_host, p_port) = split_host_port(pattern);
            let host_ok = match p_host.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => p_host == host,
            };
            host_ok && (p_port.is_none() || p_port == port)
        });
        if ok {
            Ok(())
        } else {
            Err(Sandbox::refused(what, format!("{endpoint} is not among the hosts the server allows (start it with --allow-host {host})")))
        }
    }

    /// Checks every server of a Kafka bootstrap list (`a:9092,b:9092`).
    ///
    /// Errors: a server is not allowed.
    pub fn check_bootstrap(&self, servers: &str) -> Result<()> {
        servers.split(',').filter(|s| !s.trim().is_empty()).try_for_each(|s| self.check_host(s, "the Kafka cluster"))
    }

    /// Checks the host of an `http://host[:port]/...` URL (port 80 when none is given).
    ///
    /// Errors: the URL has no host, or the host is not allowed.
    pub fn check_url(&self, url: &str, what: &str) -> Result<()> {
        let authority = url.strip_prefix("http://").unwrap_or(url).split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(Sandbox::refused(what, format!("{url} names no plain host")));
        }
        let endpoint = if split_host_port(authority).1.is_some() { authority.to_string() } else { format!("{authority}:80") };
        self.check_host(&endpoint, what)
    }

    /// Checks the hosts of a PostgreSQL URL.
    ///
    /// Errors: the URL does not parse, or a host is not allowed.
    pub fn check_postgres(&self, url: &str) -> Result<()> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| ConnectorError::Config(format!("bad PostgreSQL URL: {e}")))?;
        let ports = config.get_ports();
        for (i, host) in config.get_hosts().iter().enumerate() {
            let name = match host {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => {
                    return Err(Sandbox::refused("the PostgreSQL server", format!("a Unix socket ({})", p.display())));
                }
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            self.check_host(&format!("{name}:{port}"), "the PostgreSQL server")?;
        }
        Ok(())
    }

    /// The resolved path of a file or directory a source reads: it must exist, resolve
    /// (links followed) under an allowed directory, and be a regular file or a
    /// directory (whose files the source checks again: each must be a regular file
    /// inside it).
    ///
    /// Errors: any of these is not so; the message names the path.
    pub fn source_path(&self, path: &str) -> Result<PathBuf> {
        let resolved = Path::new(path).canonicalize().map_err(|source| ConnectorError::File { path: path.to_string(), source })?;
        self.under_allowed(path, &resolved)?;
        let meta = std::fs::metadata(&resolved).map_err(|source| ConnectorError::File { path: path.to_string(), source })?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(Sandbox::refused("this file", format!("{path} is not a regular file or a directory (a FIFO, device or socket)")));
        }
        Ok(resolved)
    }

    /// Checks a filesystem relation's path at CREATE, before it is known to be read or
    /// written: an existing file or directory as [`Sandbox::source_path`], a new one as
    /// [`Sandbox::sink_path`].
    ///
    /// Errors: as those.
    pub fn check_path(&self, path: &str) -> Result<()> {
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            self.source_path(path).map(|_| ())
        } else {
            self.sink_path(path).map(|_| ())
        }
    }

    /// The resolved path of a file a sink writes: its directory must resolve under an
    /// allowed directory (it is created there if missing), and an existing file must be
    /// a regular file there too.
    ///
    /// Errors: any of these is not so; the message names the path.
    pub fn sink_path(&self, path: &str) -> Result<PathBuf> {
        let p = Path::new(path);
        if std::fs::symlink_metadata(p).is_ok() {
            // An existing file: where it really is (links followed) and what it is.
            let resolved = p.canonicalize().map_err(|source| ConnectorError::File { path: path.to_string(), source })?;
            self.under_allowed(path, &resolved)?;
            if !std::fs::metadata(&resolved).map(|m| m.is_file()).unwrap_or(false) {
                return Err(Sandbox::refused("this file", format!("{path} is not a regular file (a directory, FIFO, device or socket)")));
            }
            return Ok(resolved);
        }
        let name = p.file_name().ok_or_else(|| Sandbox::refused("writing this file", format!("{path} names no file")))?;
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // The nearest existing ancestor must be inside; what is created below it is too.
        let mut existing = parent;
        let mut missing = Vec::new();
        while !existing.exists() {
            missing.push(existing.file_name().map(PathBuf::from).unwrap_or_default());
            existing = existing.parent().unwrap_or(Path::new("."));
        }
        if missing.iter().any(|m| m.as_os_str() == ".." || m.as_os_str().is_empty()) {
            return Err(Sandbox::refused("writing this file", format!("{path} climbs out of its directory")));
        }
        let mut dir = existing.canonicalize().map_err(|source| ConnectorError::File { path: path.to_string(), source })?;
        self.under_allowed(path, &dir)?;
        for m in missing.into_iter().rev() {
            dir.push(m);
        }
        Ok(dir.join(name))
    }

    fn under_allowed(&self, path: &str, resolved: &Path) -> Result<()> {
        if self.paths.iter().any(|dir| resolved.starts_with(dir)) {
            return Ok(());
        }
        let detail = if self.paths.is_empty() {
            format!("{path}: this server allows no files (start it with --allow-path DIR)")
        } else {
            format!("{path} resolves to {} outside the allowed directories (--allow-path)", resolved.display())
        };
        Err(Sandbox::refused("this file", detail))
    }
}

/// `host:port` to its parts; `[v6]:port` keeps the address without brackets.
fn split_host_port(endpoint: &str) -> (&str, Option<&str>) {
    if let Some(rest) = endpoint.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, tail.strip_prefix(':'));
    }
    match endpoint.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (endpoint, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_port_and_domain() -> Result<()> {
        let s = Sandbox::new(&[], vec!["127.0.0.1:9092".into(), "db.internal".into(), "*.kafka.prod".into()])?;
        s.check_bootstrap("127.0.0.1:9092")?;
        assert!(s.check_bootstrap("127.0.0.1:9093").is_err());
        s.check_bootstrap("b1.kafka.prod:9092,b2.kafka.prod:9092")?;
        assert!(s.check_bootstrap("b1.kafka.prod:9092,evil.example:9092").is_err());
        s.check_postgres("postgres://u@db.internal:6543/x")?;
        let e = s.check_postgres("postgres://u@10.0.0.5/x").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "the PostgreSQL server is not allowed on this server: 10.0.0.5:5432 is not among the hosts the server allows (start it with --allow-host 10.0.0.5)");
        s.check_url("http://db.internal/hook", "the webhook receiver")?;
        s.check_url("http://hooks.kafka.prod:8080/x?y=1", "the webhook receiver")?;
        let e =
            s.check_url("http://169.254.169.254/latest/meta-data", "the webhook receiver").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "the webhook receiver is not allowed on this server: 169.254.169.254:80 is not among the hosts the server allows (start it with --allow-host 169.254.169.254)");
        assert!(s.check_url("http://127.0.0.1:9092@evil/x", "the webhook receiver").is_err());
        Ok(())
    }

    #[test]
    fn files_stay_inside_the_allowed_directories() -> Result<()> {
        let root = std::env::temp_dir().join(format!("eddy-sandbox-{}", std::process::id()));
        let allowed = root.join("data");
        let _ = std::fs::create_dir_all(&allowed);
        let io = |source| ConnectorError::File { path: root.display().to_string(), source };
        std::fs::write(allowed.join("in.csv"), "a\n").map_err(io)?;
        std::fs::write(root.join("secret"), "s\n").map_err(io)?;
        let _ = std::os::unix::fs::symlink(root.join("secret"), allowed.join("link"));
        let s = Sandbox::new(std::slice::from_ref(&allowed), Vec::new())?;
        let inside = allowed.join("in.csv").display().to_string();
        assert_eq!(s.source_path(&inside)?, allowed.canonicalize().map_err(io)?.join("in.csv"));
        assert!(s.source_path(&allowed.join("link").display().to_string()).is_err(), "a link out is followed and refused");
        assert!(s.source_path(&allowed.join("../secret").display().to_string()).is_err());
        // A directory is read file by file (each checked again by the file source).
        assert_eq!(s.source_path(&allowed.display().to_string())?, allowed.canonicalize().map_err(io)?);
        assert!(s.sink_path(&allowed.join("out/new.csv").display().to_string()).is_ok());
        assert!(s.sink_path(&allowed.join("link").display().to_string()).is_err());
        assert!(s.sink_path(&root.join("out.csv").display().to_string()).is_err());
        let none = Sandbox::new(&[], Vec::new())?;
        let e = none.source_path(&inside).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            e,
            format!("this file is not allowed on this server: {inside}: this server allows no files (start it with --allow-path DIR)")
        );
        let _ = std::fs::remove_dir_all(&root);
        Ok(())
    }
}
