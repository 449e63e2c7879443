//! A client's session: the properties `SET` gives it (ksqlDB's session variables; the
//! REST `streamsProperties`), read by the statements it runs.

use std::collections::BTreeMap;

use crate::error::SqlError;
use crate::options::StartupMode;

/// `auto.offset.reset`: where a new query starts reading a topic with no committed
/// offsets for its consumer group: `earliest` or `latest` (Kafka's consumer setting;
/// ksqlDB's session property).
pub const AUTO_OFFSET_RESET: &str = "auto.offset.reset";

/// `execution.checkpointing.interval`: how often the queries this session starts write
/// a checkpoint (Flink's option): `10s`, `500 ms`, `1 min`, or milliseconds.
pub const CHECKPOINT_INTERVAL: &str = "execution.checkpointing.interval";

/// The properties `SET` accepts, with the values each allows (`None`: any; the
/// checkpoint interval is checked by [`parse_duration_ms`]).
const KNOWN: &[(&str, Option<&[&str]>)] = &[(AUTO_OFFSET_RESET, Some(&["earliest", "latest"])), (CHECKPOINT_INTERVAL, None)];

/// Parses a duration as Flink writes them (`10s`, `500 ms`, `2 min`, `1h`; a bare
/// number is milliseconds) into milliseconds, at least 1.
///
/// Errors: not a number with one of the units ms, s, min, h.
pub fn parse_duration_ms(text: &str) -> Result<u64, SqlError> {
    let t = text.trim().to_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor = match unit.trim() {
        "" | "ms" | "milli" | "millis" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if factor > 0 && n > 0 => Ok(n.saturating_mul(factor)),
        _ => Err(SqlError::new(format!("invalid duration '{text}'")).hint("write e.g. '10s', '500 ms' or '1 min'")),
    }
}

/// One client's session. Each shell, each REST request, each `eddy run` has its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Property name (lowercase) to value.
    pub properties: BTreeMap<String, String>,
}

impl Session {
    /// A session with `properties` (e.g. a REST request's `streamsProperties`).
    ///
    /// Errors: an unknown property or a value it does not allow, as [`Session::set`].
    pub fn with_properties<I: IntoIterator<Item = (String, String)>>(properties: I) -> Result<Session, SqlError> {
        let mut session = Session::default();
        for (k, v) in properties {
            session.set(&k, &v)?;
        }
        Ok(session)
    }

    /// Sets a property.
    ///
    /// Errors: the property is not one Eddy knows (the message lists them), or the
    /// value is not one it allows.
    pub fn set(&mut self, property: &str, value: &str) -> Result<(), SqlError> {
        let property = property.to_lowercase();
        let Some((_, allowed)) = KNOWN.iter().find(|(k, _)| *k == property) else {
            let known: Vec<&str> = KNOWN.iter().map(|(k, _)| *k).collect();
            let hint = match crate::error::closest(&property, known.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("known properties: {}", known.join(", ")),
            };
            return Err(SqlError::new(format!("unknown property '{property}'")).hint(hint));
        };
        let value = value.trim();
        if property == CHECKPOINT_INTERVAL {
            parse_duration_ms(value)?;
        }
        if let Some(allowed) = allowed {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                return Err(SqlError::new(format!("invalid value '{value}' for property '{property}'"))
                    .hint(format!("use one of: {}", allowed.join(", "))));
            }
        }
        self.properties.insert(property, value.to_lowercase());
        Ok(())
    }

    /// Removes a property; returns whether it was set.
    pub fn unset(&mut self, property: &str) -> bool {
        self.properties.remove(&property.to_lowercase()).is_some()
    }

    /// The checkpoint interval `execution.checkpointing.interval` asks for (ms), if set.
    pub fn checkpoint_interval_ms(&self) -> Option<u64> {
        self.properties.get(CHECKPOINT_INTERVAL).and_then(|v| parse_duration_ms(v).ok())
    }

    /// The startup mode `auto.offset.reset` asks for, if set.
    pub fn startup(&self) -> Option<StartupMode> {
        match self.properties.get(AUTO_OFFSET_RESET).map(String::as_str) {
            Some("earliest") => Some(StartupMode::Earliest),
            Some("latest") => Some(StartupMode::Latest),
            _ => None,
        }
    }
}
