//! The sink of a transient push query (`SELECT ... EMIT CHANGES [LIMIT n]`, ksqlDB): it
//! hands each micro-batch's rows to the client (the shell, or a REST response stream)
//! over a bounded channel, so a slow client slows the query rather than growing memory.

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::connector::Sink;
use crate::error::{EngineError, Result};

/// Batches buffered for a slow client.
const PUSH_CHANNEL_CAPACITY: usize = 16;

/// Sends rows to a client until it has `limit` rows or goes away.
///
/// When the LIMIT is reached, or the client's receiver is dropped (Ctrl-C, a closed
/// HTTP connection), `write` returns [`EngineError::ChannelClosed`]: the sink task ends,
/// and with it every stage of the query, which then counts as stopped, not failed.
pub struct PushSink {
    sender: Option<mpsc::Sender<RecordBatch>>,
    remaining: Option<usize>,
}

impl PushSink {
    /// A sink and the receiver the client reads batches from (rows in the query's
    /// output schema); the receiver ends after `limit` rows, if given.
    pub fn new(limit: Option<usize>) -> (PushSink, mpsc::Receiver<RecordBatch>) {
        let (sender, receiver) = mpsc::channel(PUSH_CHANNEL_CAPACITY);
        (PushSink { sender: Some(sender), remaining: limit }, receiver)
    }
}

#[async_trait]
impl Sink for PushSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(sender) = &self.sender else { return Err(EngineError::ChannelClosed) };
        let batch = match self.remaining {
            Some(n) if batch.num_rows() >= n => batch.slice(0, n),
            _ => batch,
        };
        let rows = batch.num_rows();
        if rows > 0 && sender.send(batch).await.is_err() {
            self.sender = None;
            return Err(EngineError::ChannelClosed);
        }
        if let Some(n) = self.remaining.as_mut() {
            *n -= rows;
            if *n == 0 {
                self.sender = None;
                return Err(EngineError::ChannelClosed);
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        match &self.sender {
            Some(s) if s.is_closed() => {
                self.sender = None;
                Err(EngineError::ChannelClosed)
            }
            _ => Ok(()),
        }
    }
}
