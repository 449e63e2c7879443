//! The command log behind the durable catalog (docs/DESIGN.md, control plane; ksqlDB's command
//! topic, kept in a file): every statement that creates, changes or drops a stream, a
//! table or a persistent query is appended, and fsynced before the statement is
//! answered. On start the log is replayed in order to rebuild the catalog and restart the
//! queries.
//!
//! **Format.** The file starts with the 8 bytes `EDDYLOG1`. Each entry is a 4-byte
//! little-endian payload length, a 4-byte little-endian CRC-32 of the payload, then the
//! payload: one [`Command`] as JSON. An entry whose length runs past the end of the file
//! (a write cut short by a crash), whose checksum does not match, or whose payload is not
//! a command ends the valid prefix: [`CommandLog::open`] reports it with its entry number
//! and byte offset, cuts the file back to the valid prefix, and goes on with the
//! commands before it, rather than refusing to start or guessing past the damage.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The first bytes of a command log file.
pub const MAGIC: &[u8; 8] = b"EDDYLOG1";

/// Largest payload accepted when reading (bytes); a longer length is damage, not a command.
pub const MAX_ENTRY_BYTES: u32 = 16 * 1024 * 1024;

/// One logged statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Position in the log, from 1.
    pub sequence: u64,
    /// The statement's text, as submitted (after `${VAR}` substitution).
    pub statement: String,
    /// The persistent query it started, if any (its id names the consumer group, so a
    /// replayed query resumes from its committed offsets).
    pub query_id: Option<String>,
    /// When it was accepted (ms since the epoch).
    pub accepted_at_ms: i64,
    /// The session properties in effect (`SET 'auto.offset.reset'='latest'`), which
    /// decide where a new query starts reading.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub properties: std::collections::BTreeMap<String, String>,
    /// The Flink statement set it was part of (the set's first query id), so that its
    /// replayed queries share their reads again ([`crate::runtime::shared_read`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_set: Option<String>,
}

/// Where the valid prefix of a damaged log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The first bad entry's number (from 1).
    pub entry: u64,
    /// Its byte offset in the file.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
    /// Bytes cut from the end of the file.
    pub dropped_bytes: u64,
}

/// An open command log, positioned for appending.
#[derive(Debug)]
pub struct CommandLog {
    path: PathBuf,
    file: File,
    next_sequence: u64,
}

impl CommandLog {
    /// Opens (or creates) the log at `path` and reads it: the commands of the valid
    /// prefix, in order, and the damage that ended it, if any (the file is cut back to
    /// the valid prefix, and the cut is fsynced).
    ///
    /// Errors: the file cannot be created, read or cut, or it is not a command log (its
    /// first bytes are not [`MAGIC`]).
    pub fn open(path: &Path) -> Result<(CommandLog, Vec<Command>, Option<TornTail>)> {
        let io = |e: std::io::Error| EngineError::io("command log", path, e);
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            // The new file's directory entry must survive a crash too.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
            return Ok((CommandLog { path: path.to_path_buf(), file, next_sequence: 1 }, Vec::new(), None));
        }
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(EngineError::State(format!(
                "{} is not an Eddy command log (it does not start with {})",
                path.display(),
                String::from_utf8_lossy(MAGIC)
            )));
        }
        let (commands, valid_end, torn) = read_entries(&bytes);
        if torn.is_some() {
            file.set_len(valid_end as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(valid_end as u64)).map_err(io)?;
        let next_sequence = commands.last().map(|c| c.sequence + 1).unwrap_or(1);
        let torn = torn.map(|(entry, offset, reason)| TornTail {
            entry,
            offset: offset as u64,
            reason,
            dropped_bytes: (bytes.len() - valid_end) as u64,
        });
        Ok((CommandLog { path: path.to_path_buf(), file, next_sequence }, commands, torn))
    }

    /// Appends a command for `statement` (and the query it started) and fsyncs it; only
    /// then may the statement be answered. Returns the command as logged.
    ///
    /// Errors: the write or the fsync fails (the statement must then be refused).
    pub fn append(&mut self, statement: &str, query_id: Option<&str>, accepted_at_ms: i64) -> Result<Command> {
        self.append_with(statement, query_id, Default::default(), accepted_at_ms)
    }

    /// [`CommandLog::append`] with the session properties the statement ran under.
    pub fn append_with(
        &mut self,
        statement: &str,
        query_id: Option<&str>,
        properties: std::collections::BTreeMap<String, String>,
        accepted_at_ms: i64,
    ) -> Result<Command> {
        self.append_command(statement, query_id, properties, accepted_at_ms, None)
    }

    /// [`CommandLog::append_with`] for a statement of the statement set tagged `set`.
    pub fn append_command(
        &mut self,
        statement: &str,
        query_id: Option<&str>,
        properties: std::collections::BTreeMap<String, String>,
        accepted_at_ms: i64,
        statement_set: Option<&str>,
    ) -> Result<Command> {
        let command = Command {
            sequence: self.next_sequence,
            statement: statement.to_string(),
            query_id: query_id.map(str::to_string),
            accepted_at_ms,
            properties,
            statement_set: statement_set.map(str::to_string),
        };
        let payload = serde_json::to_vec(&command).map_err(|e| EngineError::Internal(format!("command log: {e}")))?;
        let length = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_ENTRY_BYTES)
            .ok_or_else(|| EngineError::statement(format!("command log: a statement of {} bytes is too long to log", payload.len())))?;
        let mut entry = Vec::with_capacity(8 + payload.len());
        entry.extend_from_slice(&length.to_le_bytes());
        entry.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        entry.extend_from_slice(&payload);
        let io = |e: std::io::Error| EngineError::io("command log", &self.path, e);
        self.file.write_all(&entry).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.next_sequence += 1;
        Ok(command)
    }

    /// The sequence number of the last command logged (0 for an empty log).
    pub fn last_sequence(&self) -> u64 {
        self.next_sequence - 1
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The commands of the valid prefix of `bytes` (a whole log file, magic included), the
/// byte offset where that prefix ends, and `(entry, offset, reason)` of the first bad
/// entry.
fn read_entries(bytes: &[u8]) -> (Vec<Command>, usize, Option<(u64, usize, String)>) {
    let mut commands = Vec::new();
    let mut at = MAGIC.len();
    let mut entry = 1u64;
    while at < bytes.len() {
        let bad = |reason: String| Some((entry, at, reason));
        let Some(header) = bytes.get(at..at + 8) else {
            return (commands, at, bad(format!("the entry header is cut short ({} of 8 bytes)", bytes.len() - at)));
        };
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let checksum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if length > MAX_ENTRY_BYTES {
            return (commands, at, bad(format!("the entry claims {length} bytes, more than any command")));
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + length as usize) else {
            return (commands, at, bad(format!("the entry is cut short ({} of {length} bytes)", bytes.len() - at - 8)));
        };
        if crc32fast::hash(payload) != checksum {
            return (commands, at, bad("the checksum does not match".to_string()));
        }
        match serde_json::from_slice::<Command>(payload) {
            Ok(c) if c.sequence == entry => commands.push(c),
            Ok(c) => return (commands, at, bad(format!("it has sequence number {} where {entry} was due", c.sequence))),
            Err(e) => return (commands, at, bad(format!("it is not a command: {e}"))),
        }
        at += 8 + length as usize;
        entry += 1;
    }
    (commands, at, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eddy-command-log-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join("commands.log")
    }

    fn log_three(path: &Path) -> Result<()> {
        let (mut log, commands, torn) = CommandLog::open(path)?;
        assert!(commands.is_empty() && torn.is_none());
        log.append("CREATE STREAM s (a INT) WITH (kafka_topic='s', value_format='json');", None, 1)?;
        log.append("CREATE STREAM t WITH (kafka_topic='t') AS SELECT a FROM s;", Some("csas_t"), 2)?;
        log.append("DROP STREAM t;", None, 3)?;
        Ok(())
    }

    #[test]
    fn replays_in_order_and_appends_after() -> Result<()> {
        let path = temp("replay");
        log_three(&path)?;
        let (mut log, commands, torn) = CommandLog::open(&path)?;
        assert_eq!(torn, None);
        let seen: Vec<(u64, Option<&str>)> = commands.iter().map(|c| (c.sequence, c.query_id.as_deref())).collect();
        assert_eq!(seen, [(1, None), (2, Some("csas_t")), (3, None)]);
        assert_eq!(log.append("DROP STREAM s;", None, 4)?.sequence, 4);
        let (_, commands, _) = CommandLog::open(&path)?;
        assert_eq!(commands.len(), 4);
        Ok(())
    }

    #[test]
    fn a_torn_tail_is_reported_and_cut_back_to_the_valid_prefix() -> Result<()> {
        let path = temp("torn");
        log_three(&path)?;
        let full = std::fs::read(&path).map_err(|e| EngineError::io("test file", &path, e))?;
        // A crash in the middle of writing the third entry: its last 10 bytes never landed.
        std::fs::write(&path, &full[..full.len() - 10]).map_err(|e| EngineError::io("test file", &path, e))?;
        let (mut log, commands, torn) = CommandLog::open(&path)?;
        assert_eq!(commands.len(), 2);
        let torn = torn.unwrap_or_else(|| panic!("the torn entry must be reported"));
        assert_eq!(torn.entry, 3);
        assert!(torn.reason.starts_with("the entry is cut short"), "{}", torn.reason);
        assert_eq!(log.append("DROP STREAM t;", None, 5)?.sequence, 3, "appending goes on after the valid prefix");
        let (_, commands, torn) = CommandLog::open(&path)?;
        assert_eq!((commands.len(), torn), (3, None));
        Ok(())
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() -> Result<()> {
        let path = temp("corrupt");
        log_three(&path)?;
        let mut bytes = std::fs::read(&path).map_err(|e| EngineError::io("test file", &path, e))?;
        // The payload of entry 2 starts after the magic, entry 1 and entry 2's header.
        let first = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let offset = 8 + 8 + first;
        bytes[offset + 8 + 5] ^= 0x20;
        std::fs::write(&path, &bytes).map_err(|e| EngineError::io("test file", &path, e))?;
        let (_, commands, torn) = CommandLog::open(&path)?;
        assert_eq!(commands.len(), 1);
        let torn = torn.unwrap_or_else(|| panic!("the corrupt entry must be reported"));
        assert_eq!((torn.entry, torn.offset, torn.reason.as_str()), (2, offset as u64, "the checksum does not match"));
        Ok(())
    }

    #[test]
    fn another_file_is_refused() {
        let path = temp("foreign");
        let _ = std::fs::write(&path, b"hello, world");
        let err = CommandLog::open(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.ends_with("is not an Eddy command log (it does not start with EDDYLOG1)"), "{err}");
    }
}
