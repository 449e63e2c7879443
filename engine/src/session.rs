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

/// `table.exec.state.ttl`: how long a join of two streams without a time bound keeps a
/// row (Flink's option; `1 h`, `30 min`, or milliseconds). Without it such a join is refused.
pub const STATE_TTL: &str = "table.exec.state.ttl";

/// `table.optimizer.agg-phase-strategy`: whether an aggregation on several workers is
/// pre-aggregated before its key exchange (Flink's option): `AUTO` and `TWO_PHASE` (where
/// it can be: not session windows, DISTINCT or a late-rows topic), `ONE_PHASE` (never).
pub const AGG_PHASE_STRATEGY: &str = "table.optimizer.agg-phase-strategy";

/// The properties `SET` accepts, with the values each allows (`None`: any; durations are
/// checked by [`parse_duration_ms`]).
const KNOWN: &[(&str, Option<&[&str]>)] = &[
    (AUTO_OFFSET_RESET, Some(&["earliest", "latest"])),
    (CHECKPOINT_INTERVAL, None),
    (STATE_TTL, None),
    (AGG_PHASE_STRATEGY, Some(&["AUTO", "ONE_PHASE", "TWO_PHASE"])),
];

/// Properties ksqlDB and Kafka Streams know that Eddy has no use for: `SET` accepts
/// them with a warning, as ksqlDB's clients and scripts send them. Besides these, every
/// `ksql.*` property is accepted so. (`ksql.streams.<p>` is Kafka Streams' `<p>`.)
const IGNORED: &[&str] = &[
    "processing.guarantee",
    "commit.interval.ms",
    "cache.max.bytes.buffering",
    "statestore.cache.max.bytes",
    "num.stream.threads",
    "replication.factor",
    "state.dir",
    "buffered.records.per.partition",
    "max.task.idle.ms",
    "default.timestamp.extractor",
];

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
            if let Some(warning) = session.set(&k, &v)? {
                tracing::debug!("{warning}");
            }
        }
        Ok(session)
    }

    /// Whether a property name is one [`Session::set`] accepts (Eddy's, or ksqlDB's that
    /// Eddy accepts without effect), for ksqlDB's `/is_valid_property`.
    pub fn is_known_property(property: &str) -> bool {
        let lower = property.to_lowercase();
        let property = lower.strip_prefix("ksql.streams.").unwrap_or(&lower);
        KNOWN.iter().any(|(k, _)| *k == property) || property.starts_with("ksql.") || IGNORED.contains(&property)
    }

    /// Sets a property. ksqlDB's spelling `ksql.streams.<property>` is `<property>`
    /// (`ksql.streams.auto.offset.reset`). A property ksqlDB knows but Eddy has no use
    /// for (any other `ksql.*`, or a Kafka Streams setting such as
    /// `processing.guarantee`) is kept and returns a warning saying it has no effect.
    ///
    /// Errors: the property is not one Eddy or ksqlDB knows (the message lists Eddy's),
    /// or the value is not one it allows.
    pub fn set(&mut self, property: &str, value: &str) -> Result<Option<String>, SqlError> {
        let lower = property.to_lowercase();
        let property = lower.strip_prefix("ksql.streams.").unwrap_or(&lower).to_string();
        let Some((_, allowed)) = KNOWN.iter().find(|(k, _)| *k == property) else {
            if property.starts_with("ksql.") || IGNORED.contains(&property.as_str()) {
                self.properties.insert(lower.clone(), value.trim().to_string());
                return Ok(Some(format!("property '{lower}' is accepted for ksqlDB compatibility and has no effect in Eddy")));
            }
            let known: Vec<&str> = KNOWN.iter().map(|(k, _)| *k).collect();
            let hint = match crate::error::closest(&property, known.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("known properties: {}", known.join(", ")),
            };
            return Err(SqlError::new(format!("unknown property '{property}'")).hint(hint));
        };
        let value = value.trim();
        if property == CHECKPOINT_INTERVAL || property == STATE_TTL {
            parse_duration_ms(value)?;
        }
        if let Some(allowed) = allowed {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                return Err(SqlError::new(format!("invalid value '{value}' for property '{property}'"))
                    .hint(format!("use one of: {}", allowed.join(", "))));
            }
        }
        self.properties.insert(property, value.to_lowercase());
        Ok(None)
    }

    /// Removes a property (either spelling of a `ksql.streams.` one); returns whether
    /// it was set.
    pub fn unset(&mut self, property: &str) -> bool {
        let lower = property.to_lowercase();
        let short = lower.strip_prefix("ksql.streams.").unwrap_or(&lower).to_string();
        let removed = self.properties.remove(&short).is_some();
        self.properties.remove(&lower).is_some() || removed
    }

    /// The checkpoint interval `execution.checkpointing.interval` asks for (ms), if set.
    pub fn checkpoint_interval_ms(&self) -> Option<u64> {
        self.properties.get(CHECKPOINT_INTERVAL).and_then(|v| parse_duration_ms(v).ok())
    }

    /// The state TTL `table.exec.state.ttl` asks for (ms), if set.
    pub fn state_ttl_ms(&self) -> Option<u64> {
        self.properties.get(STATE_TTL).and_then(|v| parse_duration_ms(v).ok())
    }

    /// Whether `table.optimizer.agg-phase-strategy` is `ONE_PHASE`: no pre-aggregation before
    /// the key exchange.
    pub fn one_phase_aggregation(&self) -> bool {
        self.properties.get(AGG_PHASE_STRATEGY).is_some_and(|v| v == "one_phase")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// ksqlDB's clients send `ksql.streams.auto.offset.reset` and properties Eddy has no
    /// use for; the first is Eddy's own, the others are kept with a warning.
    #[test]
    fn ksqldb_property_names() -> Result<(), SqlError> {
        let mut s = Session::default();
        assert_eq!(s.set("ksql.streams.auto.offset.reset", "EARLIEST")?, None);
        assert_eq!(s.startup(), Some(StartupMode::Earliest));
        assert_eq!(
            s.set("ksql.query.pull.table.scan.enabled", "true")?,
            Some("property 'ksql.query.pull.table.scan.enabled' is accepted for ksqlDB compatibility and has no effect in Eddy".into())
        );
        assert!(s.set("processing.guarantee", "exactly_once_v2")?.is_some());
        let e = s.set("auto.ofset.reset", "earliest").err().map(|e| (e.message, e.hint));
        assert_eq!(e, Some(("unknown property 'auto.ofset.reset'".into(), Some("did you mean 'auto.offset.reset'?".into()))));
        assert!(s.unset("ksql.streams.auto.offset.reset"));
        assert_eq!(s.startup(), None);
        Ok(())
    }
}
