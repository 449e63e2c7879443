//! A client's session: the properties `SET` gives it (ksqlDB's session variables; the
//! REST `streamsProperties`), read by the statements it runs.

use std::collections::BTreeMap;

use crate::error::SqlError;
use crate::options::StartupMode;

/// `auto.offset.reset`: where a new query starts reading a topic with no committed
/// offsets for its consumer group: `earliest` or `latest` (Kafka's consumer setting;
/// ksqlDB's session property).
pub const AUTO_OFFSET_RESET: &str = "auto.offset.reset";

/// The properties `SET` accepts, with the values each allows (`None`: any).
const KNOWN: &[(&str, Option<&[&str]>)] = &[(AUTO_OFFSET_RESET, Some(&["earliest", "latest"]))];

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
        if let Some(allowed) = allowed {
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
                return Err(SqlError::new(format!("invalid value '{value}' for property '{property}'")).hint(format!("use one of: {}", allowed.join(", "))));
            }
        }
        self.properties.insert(property, value.to_lowercase());
        Ok(())
    }

    /// Removes a property; returns whether it was set.
    pub fn unset(&mut self, property: &str) -> bool {
        self.properties.remove(&property.to_lowercase()).is_some()
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
