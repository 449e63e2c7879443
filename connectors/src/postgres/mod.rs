//! PostgreSQL (`'connector'='postgres'`, or `'jdbc'` with a `jdbc:postgresql://` URL):
//! a sink ([`PostgresSink`]) and the table of a lookup join ([`PostgresLookup`]).

mod columns;
mod lookup;
mod sink;

pub use lookup::PostgresLookup;
pub use sink::PostgresSink;

use crate::error::{ConnectorError, Result};

/// The connection settings of `url` with the table's `username` and `password`, a
/// `connect_timeout` unless the URL sets one (a dead network shows as an error to retry,
/// not as a statement that hangs forever) and TCP keepalives.
///
/// Errors: `url` does not parse.
pub(crate) fn config(
    url: &str,
    options: &eddy_engine::options::PostgresOptions,
    connect_timeout: std::time::Duration,
) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| ConnectorError::Config(format!("bad PostgreSQL URL: {e}")))?;
    if let Some(u) = &options.username {
        config.user(u);
    }
    if let Some(p) = &options.password {
        config.password(p);
    }
    config.application_name("eddy");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    config.keepalives_idle(std::time::Duration::from_secs(30));
    Ok(config)
}

/// A new connection per `config` (its task spawned). tokio-postgres bounds the TCP
/// connect only; a server that accepts and then never answers the startup handshake is
/// bounded here, by the config's connect timeout (else [`crate::DEFAULT_CONNECT_TIMEOUT`]).
///
/// Errors: refused, timed out, authentication failed.
pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let limit = config.get_connect_timeout().copied().unwrap_or(crate::DEFAULT_CONNECT_TIMEOUT);
    let (client, connection) = match tokio::time::timeout(limit, config.connect(tokio_postgres::NoTls)).await {
        Ok(connected) => connected?,
        Err(_) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            return Err(ConnectorError::TimedOut { system: "postgres", what: format!("connecting to {}", hosts.join(",")), after: limit });
        }
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}

/// The PostgreSQL column type Eddy creates for an Arrow type.
pub fn pg_type_name(data_type: &arrow::datatypes::DataType) -> Option<String> {
    use arrow::datatypes::{DataType, TimeUnit};
    Some(
        match data_type {
            DataType::Int8 | DataType::Int16 => "smallint",
            DataType::Float32 => "real",
            DataType::Decimal128(p, s) => return Some(format!("numeric({p}, {s})")),
            DataType::Date32 => "date",
            DataType::Time32(TimeUnit::Millisecond) => "time(3)",
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => "jsonb",
            DataType::Int32 => "integer",
            DataType::Int64 => "bigint",
            DataType::Float64 => "double precision",
            DataType::Boolean => "boolean",
            DataType::Utf8 => "text",
            DataType::Binary => "bytea",
            DataType::Timestamp(TimeUnit::Millisecond, None) => "timestamp(3)",
            _ => return None,
        }
        .to_string(),
    )
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
