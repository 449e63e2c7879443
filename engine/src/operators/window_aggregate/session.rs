//! Session windows (ksqlDB `WINDOW SESSION`, Flink `SESSION`): per key, non-overlapping
//! `[start, end)` ranges with one row `Accumulator` per aggregate. A row opens
//! `[ts, ts + gap)`; sessions it overlaps are merged into it (`state` + `merge_batch`).
//! Rows are applied one by one in event-time order within a batch, since one row can
//! bridge two sessions.
//!
//! `EMIT CHANGES` ([`SessionWindows::take_changes`]): after each batch, the sessions it
//! changed are emitted with their current values, after a retraction (a tombstone) of each
//! emitted session that a merge replaced, as ksqlDB (Kafka Streams) does: rows at 0 and 10
//! seconds with a 30-second gap give the session 0..0, then its tombstone and 0..10000.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, ArrayRef, TimestampMillisecondArray};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::Accumulator;

use super::groups::{Aggregate, Inputs};
use super::Timing;
use crate::error::Result;
use crate::operator::Timestamp;

/// One session of one key.
struct Session {
    start: Timestamp,
    end: Timestamp,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// EMIT CHANGES: rows since it was last emitted.
    changed: bool,
    /// EMIT CHANGES: it was emitted, so replacing it needs a retraction.
    emitted: bool,
}

/// A closed session, ready to emit: its key columns (one row each), bounds and values.
pub(super) struct Closed {
    pub(super) keys: Vec<ArrayRef>,
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
    pub(super) values: Vec<ArrayRef>,
}

/// Open sessions in the layout of a checkpoint: one row per session.
pub(super) struct SessionsState {
    pub(super) starts: Vec<Timestamp>,
    pub(super) ends: Vec<Timestamp>,
    /// One array per key column.
    pub(super) keys: Vec<ArrayRef>,
    /// Per aggregate, per state field: one array per session.
    pub(super) parts: Vec<Vec<Vec<ArrayRef>>>,
}

/// The open sessions of every key.
pub(super) struct SessionWindows {
    gap: i64,
    /// Row-encodes the key columns (`None`: no GROUP BY keys).
    converter: Option<RowConverter>,
    sessions: HashMap<Box<[u8]>, Vec<Session>>,
    /// Emitted sessions that merges replaced since the last [`SessionWindows::take_changes`]:
    /// key, start, end.
    retracted: Vec<(Box<[u8]>, Timestamp, Timestamp)>,
    /// EMIT CHANGES: the keys whose sessions changed since the last take (`None`: not
    /// tracked, EMIT FINAL), so that a batch costs its keys, not every open session.
    changed_keys: Option<HashSet<Box<[u8]>>>,
}

impl SessionWindows {
    /// No sessions yet, for keys of `key_schema` and an inactivity gap of `gap` ms;
    /// `changes`: EMIT CHANGES, which tracks the sessions each batch changes.
    ///
    /// Errors: the key types cannot be row-encoded.
    pub(super) fn new(gap: i64, key_schema: Option<&SchemaRef>, changes: bool) -> Result<Self> {
        let converter = match key_schema {
            Some(s) => Some(RowConverter::new(s.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())?),
            None => None,
        };
        Ok(SessionWindows { gap, converter, sessions: HashMap::new(), retracted: Vec::new(), changed_keys: changes.then(HashSet::new) })
    }

    /// Whether no session is open.
    pub(super) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Open sessions.
    pub(super) fn len(&self) -> usize {
        self.sessions.values().map(Vec::len).sum()
    }

    /// Approximate bytes held.
    pub(super) fn size(&self) -> usize {
        self.sessions
            .iter()
            .map(|(k, l)| k.len() + l.iter().map(|s| s.accumulators.iter().map(|a| a.size()).sum::<usize>() + 32).sum::<usize>())
            .sum()
    }

    /// Adds the rows of a batch (event times `times`, key columns `keys`, aggregate
    /// `inputs`); the rows whose merged session is already closed go to `late`.
    ///
    /// Errors: the keys cannot be encoded, or an aggregate rejects its input.
    pub(super) fn update(
        &mut self,
        times: &TimestampMillisecondArray,
        keys: Option<&[ArrayRef]>,
        inputs: &Inputs,
        aggregates: &[Aggregate],
        timing: Timing,
        late: &mut Vec<u32>,
    ) -> Result<()> {
        let rows = match (&self.converter, keys) {
            (Some(c), Some(k)) => Some(c.convert_columns(k)?),
            _ => None,
        };
        let mut order: Vec<u32> = (0..times.len() as u32).collect();
        order.sort_by_key(|&r| times.value(r as usize));
        for r in order {
            let ts = times.value(r as usize);
            let key: Box<[u8]> = match &rows {
                Some(k) => k.row(r as usize).data().into(),
                None => Box::new([]),
            };
            let (mut start, mut end) = (ts, ts.saturating_add(self.gap));
            let list = self.sessions.get(&key).map(|l| l.as_slice()).unwrap_or(&[]);
            // Sessions that touch merge: rows exactly a gap apart are one session (Flink's
            // `TimeWindow.intersects`, Kafka Streams' inclusive inactivity gap).
            let overlapping: Vec<usize> =
                list.iter().enumerate().filter(|(_, s)| s.start <= end && start <= s.end).map(|(i, _)| i).collect();
            for &i in &overlapping {
                start = start.min(list[i].start);
                end = end.max(list[i].end);
            }
            if timing.is_closed(end) {
                late.push(r);
                continue;
            }
            let fresh: Vec<Box<dyn Accumulator>> = aggregates.iter().map(Aggregate::accumulator).collect::<Result<_>>()?;
            if let Some(changed) = self.changed_keys.as_mut() {
                changed.insert(key.clone());
            }
            let list = self.sessions.entry(key.clone()).or_default();
            let mut merged = Session { start, end, accumulators: fresh, changed: true, emitted: false };
            for i in overlapping.into_iter().rev() {
                let mut old = list.remove(i);
                if old.emitted {
                    self.retracted.push((key.clone(), old.start, old.end));
                }
                for (acc, o) in merged.accumulators.iter_mut().zip(old.accumulators.iter_mut()) {
                    let state = o.state()?.iter().map(|s| s.to_array()).collect::<Result<Vec<_>, _>>()?;
                    acc.merge_batch(&state)?;
                }
            }
            for (acc, (values, filter)) in merged.accumulators.iter_mut().zip(inputs) {
                if filter.as_ref().is_some_and(|f| !f.is_valid(r as usize) || !f.value(r as usize)) {
                    continue;
                }
                let row: Vec<ArrayRef> = values.iter().map(|v| v.slice(r as usize, 1)).collect();
                acc.update_batch(&row)?;
            }
            let at = list.partition_point(|s| s.start < merged.start);
            list.insert(at, merged);
        }
        Ok(())
    }

    /// Removes and returns the sessions whose end the watermark has passed
    /// (`end - 1 + grace <= watermark`), in window order, then key order.
    ///
    /// Errors: an accumulator cannot give its value, or a key cannot be decoded.
    pub(super) fn close(&mut self, watermark: Timestamp, grace: i64) -> Result<Vec<Closed>> {
        let mut closed: Vec<(Box<[u8]>, Session)> = Vec::new();
        self.sessions.retain(|key, list| {
            let mut i = 0;
            while i < list.len() {
                if list[i].end.saturating_sub(1).saturating_add(grace) <= watermark {
                    closed.push((key.clone(), list.remove(i)));
                } else {
                    i += 1;
                }
            }
            !list.is_empty()
        });
        closed.sort_by(|a, b| (a.1.start, &a.0).cmp(&(b.1.start, &b.0)));
        let mut out = Vec::with_capacity(closed.len());
        for (key, mut session) in closed {
            let values = session.accumulators.iter_mut().map(|a| a.evaluate().and_then(|v| v.to_array())).collect::<Result<Vec<_>, _>>()?;
            out.push(Closed { keys: self.decode(&[key])?, start: session.start, end: session.end, values });
        }
        Ok(out)
    }

    /// EMIT CHANGES: the emitted sessions replaced by merges since the last call (their
    /// `values` empty: to retract), and the sessions changed since, with their current
    /// values (in window, then key order). The accumulators keep their state.
    ///
    /// Errors: an accumulator cannot give its state or value, or a key cannot be decoded.
    pub(super) fn take_changes(&mut self, aggregates: &[Aggregate]) -> Result<(Vec<Closed>, Vec<Closed>)> {
        let mut retracted = std::mem::take(&mut self.retracted);
        retracted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let mut gone = Vec::with_capacity(retracted.len());
        for (key, start, end) in retracted {
            gone.push(Closed { keys: self.decode(&[key])?, start, end, values: Vec::new() });
        }
        // Keys decoded after the walk (which holds the sessions mutably).
        let mut changed: Vec<(Box<[u8]>, Closed)> = Vec::new();
        for key in self.changed_keys.as_mut().map(std::mem::take).unwrap_or_default() {
            let Some(list) = self.sessions.get_mut(&key) else { continue };
            for session in list.iter_mut().filter(|s| s.changed) {
                let mut values = Vec::with_capacity(session.accumulators.len());
                for (i, acc) in session.accumulators.iter_mut().enumerate() {
                    // `state` and `evaluate` may take the values: fresh ones merge them back.
                    let fields = acc.state()?.iter().map(|v| v.to_array()).collect::<Result<Vec<_>, _>>()?;
                    let mut kept = aggregates[i].accumulator()?;
                    kept.merge_batch(&fields)?;
                    *acc = kept;
                    let mut probe = aggregates[i].accumulator()?;
                    probe.merge_batch(&fields)?;
                    values.push(probe.evaluate()?.to_array()?);
                }
                session.changed = false;
                session.emitted = true;
                changed.push((key.clone(), Closed { keys: Vec::new(), start: session.start, end: session.end, values }));
            }
        }
        changed.sort_by(|a, b| (a.1.start, &a.0).cmp(&(b.1.start, &b.0)));
        let mut current = Vec::with_capacity(changed.len());
        for (key, mut session) in changed {
            session.keys = self.decode(&[key])?;
            current.push(session);
        }
        Ok((gone, current))
    }

    /// Row-encoded keys back to key columns.
    fn decode(&self, keys: &[Box<[u8]>]) -> Result<Vec<ArrayRef>> {
        let Some(converter) = &self.converter else { return Ok(Vec::new()) };
        let parser = converter.parser();
        Ok(converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?)
    }

    /// Every open session for a checkpoint, keeping them.
    ///
    /// Errors: an accumulator cannot give its state.
    pub(super) fn snapshot(&mut self, aggregates: &[Aggregate]) -> Result<SessionsState> {
        let mut state = SessionsState { starts: Vec::new(), ends: Vec::new(), keys: Vec::new(), parts: vec![Vec::new(); aggregates.len()] };
        let mut keys: Vec<Box<[u8]>> = Vec::new();
        for (key, list) in self.sessions.iter_mut() {
            for session in list.iter_mut() {
                for (i, acc) in session.accumulators.iter_mut().enumerate() {
                    // `state` may take the accumulator's values: a fresh one merges them back.
                    let fields = acc.state()?.iter().map(|v| v.to_array()).collect::<Result<Vec<_>, _>>()?;
                    let mut fresh = aggregates[i].accumulator()?;
                    fresh.merge_batch(&fields)?;
                    *acc = fresh;
                    super::push_fields(&mut state.parts[i], fields);
                }
                state.starts.push(session.start);
                state.ends.push(session.end);
                keys.push(key.clone());
            }
        }
        state.keys = self.decode(&keys)?;
        Ok(state)
    }

    /// Restores the sessions of a checkpoint: row `r` is the session
    /// `[starts[r], ends[r])` of the key in row `r` of `key_columns`, with the state
    /// fields of each aggregate in `states`.
    ///
    /// Errors: the keys cannot be encoded, or the state does not fit the accumulators.
    pub(super) fn restore(
        &mut self,
        starts: &[Timestamp],
        ends: &[Timestamp],
        key_columns: &[ArrayRef],
        states: &[Vec<ArrayRef>],
        aggregates: &[Aggregate],
    ) -> Result<()> {
        let rows = match &self.converter {
            Some(c) => Some(c.convert_columns(key_columns)?),
            None => None,
        };
        for (r, (&start, &end)) in starts.iter().zip(ends).enumerate() {
            let mut accumulators: Vec<Box<dyn Accumulator>> = aggregates.iter().map(Aggregate::accumulator).collect::<Result<_>>()?;
            for (acc, cols) in accumulators.iter_mut().zip(states) {
                let row: Vec<ArrayRef> = cols.iter().map(|c| c.slice(r, 1)).collect();
                acc.merge_batch(&row)?;
            }
            let key: Box<[u8]> = rows.as_ref().map(|k| Box::from(k.row(r).data())).unwrap_or_default();
            let list = self.sessions.entry(key).or_default();
            // What a checkpoint holds was emitted before it (EMIT CHANGES emits after each batch).
            let session = Session { start, end, accumulators, changed: false, emitted: true };
            let at = list.partition_point(|s| s.start < session.start);
            list.insert(at, session);
        }
        Ok(())
    }
}
