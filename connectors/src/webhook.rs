//! The `webhook` sink: rows sent as JSON to an HTTP endpoint, at least once
//! (`'connector'='webhook'`, [`WebhookOptions`]).
//!
//! **When.** Rows are buffered as they arrive and sent when the sink is flushed: at each
//! checkpoint barrier before the checkpoint's state is written ([`Sink::pre_commit`]),
//! when a watermark releases rows, and at the end. A checkpoint therefore never covers a
//! row the receiver has not acknowledged: a crash replays every row that might not have
//! arrived (at least once).
//!
//! **Requests.** `'sink.batch.max-rows'` rows per request: with 1 (the default) the body
//! is the row's JSON object; with more, a JSON array of objects. `Content-Type:
//! application/json`, the statement's `'headers'`, and an `Idempotency-Key` (below).
//! `'sink.requests.max-inflight'` (Flink's async sink option; default 1) requests are
//! sent at once: with 1 the receiver gets the rows in order, with more in any order.
//!
//! **Answers.** 2xx: delivered. 408, 429, 5xx, a refused or broken connection, or no
//! answer within `'sink.request-timeout'`: retried with exponential backoff and jitter
//! (100 ms up to 30 s) for as long as it takes, while the query shows `RETRYING` with
//! the last error; the sink task waits, so backpressure pauses the source. Any other
//! status (a 4xx, or a redirect, which is not followed) is the receiver refusing the
//! rows for good: they go to the dead letter target (`'dead-letter.topic'` or
//! `'dead-letter.table'`, rows of [`eddy_engine::record::dead_letter_schema`]: key = the
//! idempotency key, value = the row's JSON, topic = the URL, error = the status and the
//! first 1 KiB of the answer), or, without one, the query fails with that answer.
//!
//! **Idempotency keys.** Each row's key is derived from the query id, the checkpoint
//! the rows since the last commit follow (its id; the restored checkpoint's after a
//! restart), the row's JSON, and how many identical rows came before it since that
//! checkpoint: SHA-256, 32 hex digits. A retry carries the same key, and so does the
//! replay of a row after a crash, since the replay resumes from that checkpoint and
//! produces the same rows (in any order: the key does not depend on it). A request of
//! several rows carries the key of its rows' keys; a replay may cut rows into
//! different requests, so a receiver that deduplicates should use batches of one row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use eddy_engine::connector::{Progress, Sink};
use eddy_engine::format::ValueEncoder;
use eddy_engine::metrics::QueryMetrics;
use eddy_engine::options::{Format, WebhookOptions};
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use crate::error::{ConnectorError, Result};
use crate::retry::Backoff;

/// Most bytes of a refusing answer kept for the error and the dead letter.
const ANSWER_BYTES: usize = 1024;

/// Sends rows to an HTTP endpoint (see the module docs).
pub struct WebhookSink {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: hyper::Uri,
    options: WebhookOptions,
    encoder: ValueEncoder,
    /// Rows not sent yet: their JSON and idempotency key.
    pending: Vec<(Vec<u8>, String)>,
    query_id: String,
    /// The checkpoint id the rows since the last commit follow.
    anchor: u64,
    /// Per row digest since `anchor`, how many such rows came so far.
    occurrences: HashMap<[u8; 32], u32>,
    metrics: Arc<QueryMetrics>,
    dead_letters: Option<Box<dyn Sink>>,
}

/// What one request came to.
enum Outcome {
    Delivered,
    /// Worth another try: why.
    Retry(String),
    /// Refused for good: the status and the start of the answer.
    Refused(String),
}

impl WebhookSink {
    /// A sink for `options`, sending on behalf of query `query_id`; rows the receiver
    /// refuses go to `dead_letters` when there is one.
    ///
    /// Errors: the URL does not parse.
    pub fn new(options: &WebhookOptions, query_id: &str, metrics: Arc<QueryMetrics>, dead_letters: Option<Box<dyn Sink>>) -> Result<Self> {
        let uri: hyper::Uri = options.url.parse().map_err(|e| ConnectorError::Config(format!("webhook url '{}': {e}", options.url)))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(options.request_timeout_ms)));
        connector.set_nodelay(true);
        Ok(WebhookSink {
            client: Client::builder(TokioExecutor::new()).build(connector),
            uri,
            options: options.clone(),
            encoder: ValueEncoder::new(Format::Json),
            pending: Vec::new(),
            query_id: query_id.to_string(),
            anchor: 0,
            occurrences: HashMap::new(),
            metrics,
            dead_letters,
        })
    }

    /// The idempotency key of `row` (see the module docs).
    fn key_of(&mut self, row: &[u8]) -> String {
        let mut digest = Sha256::new();
        digest.update(self.query_id.as_bytes());
        digest.update([0]);
        digest.update(self.anchor.to_be_bytes());
        digest.update(row);
        let digest: [u8; 32] = digest.finalize().into();
        let seen = self.occurrences.entry(digest).or_insert(0);
        let n = *seen;
        *seen += 1;
        let mut key = Sha256::new();
        key.update(digest);
        key.update(n.to_be_bytes());
        hex(&key.finalize()[..16])
    }

    /// The body and idempotency key of one request of `rows`.
    fn request(&self, rows: &[(Vec<u8>, String)]) -> (Bytes, String) {
        match rows {
            [(row, key)] if self.options.batch_max_rows == 1 => (Bytes::from(row.clone()), key.clone()),
            _ => {
                let mut body = Vec::with_capacity(rows.iter().map(|(r, _)| r.len() + 1).sum::<usize>() + 2);
                body.push(b'[');
                let mut digest = Sha256::new();
                for (i, (row, key)) in rows.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(row);
                    digest.update(key.as_bytes());
                }
                body.push(b']');
                (Bytes::from(body), hex(&digest.finalize()[..16]))
            }
        }
    }

    /// Routes refused rows to the dead letters (written and flushed at once), or fails.
    async fn refused(&mut self, rows: &[(Vec<u8>, String)], why: &str) -> eddy_engine::Result<()> {
        let Some(dead_letters) = self.dead_letters.as_mut() else {
            return Err(ConnectorError::Refused {
                what: format!("the webhook {} refused {} row(s)", self.options.url, rows.len()),
                consequence: "the query stops, as the statement names no 'dead-letter.topic' or 'dead-letter.table' for refused rows (its offsets stay uncommitted: restarting it after the fix loses nothing)",
                source: Box::new(ConnectorError::Config(why.to_string())),
            }
            .into());
        };
        tracing::warn!(query = %self.query_id, rows = rows.len(), "webhook {} refused rows, sent to the dead letters: {why}", self.options.url);
        let n = rows.len();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::from_iter_values(rows.iter().map(|(_, k)| k.as_bytes()))),
            Arc::new(BinaryArray::from_iter_values(rows.iter().map(|(r, _)| r.as_slice()))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(self.options.url.as_str(), n))),
            Arc::new(Int32Array::from(vec![0; n])),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(TimestampMillisecondArray::from(vec![None; n])),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(why, n))),
            Arc::new(TimestampMillisecondArray::from(vec![now; n])),
        ];
        let batch = RecordBatch::try_new(eddy_engine::record::dead_letter_schema(), columns).map_err(ConnectorError::from)?;
        dead_letters.write(batch).await?;
        dead_letters.flush().await
    }
}

#[async_trait]
impl Sink for WebhookSink {
    async fn write(&mut self, batch: RecordBatch) -> eddy_engine::Result<()> {
        let rows = self.encoder.encode(&batch)?;
        self.pending.reserve(rows.len());
        for row in rows {
            let key = self.key_of(&row);
            self.pending.push((row, key));
        }
        Ok(())
    }

    /// Sends every buffered row; returns once each is delivered or dead-lettered.
    async fn flush(&mut self) -> eddy_engine::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let size = self.options.batch_max_rows.max(1);
        // Up to `max_inflight` requests at once; their answers are taken in order, so
        // refused rows reach the dead letters in the order they were written. Without
        // dead letters the first refusal stops the sending (the query fails with it).
        let requests: Vec<(Bytes, String)> = pending.chunks(size).map(|rows| self.request(rows)).collect();
        let stop_at_refusal = self.dead_letters.is_none();
        let mut refusals: Vec<(usize, String)> = Vec::new();
        {
            let sender =
                Sender { client: &self.client, uri: &self.uri, options: &self.options, metrics: &self.metrics, query_id: &self.query_id };
            let sends: Vec<_> = requests.iter().map(|(body, key)| sender.send(body, key)).collect();
            let mut answers = futures::stream::iter(sends).buffered(self.options.max_inflight.max(1));
            let mut i = 0;
            while let Some(answer) = answers.next().await {
                if let Some(why) = answer {
                    refusals.push((i, why));
                    if stop_at_refusal {
                        break;
                    }
                }
                i += 1;
            }
        }
        for (i, why) in refusals {
            let rows = &pending[i * size..((i + 1) * size).min(pending.len())];
            if let Err(e) = self.refused(rows, &why).await {
                // Not delivered: kept (the query fails; nothing after it is sent).
                self.pending = pending[i * size..].to_vec();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends the buffered rows; the rows after this follow checkpoint `progress`.
    async fn commit(&mut self, progress: &Progress) -> eddy_engine::Result<()> {
        self.flush().await?;
        if progress.checkpoint_id != self.anchor {
            self.anchor = progress.checkpoint_id;
            self.occurrences.clear();
        }
        Ok(())
    }

    async fn resume(&mut self, from: Option<&Progress>) -> eddy_engine::Result<()> {
        self.anchor = from.map_or(0, |p| p.checkpoint_id);
        self.occurrences.clear();
        Ok(())
    }
}

/// What sending needs of a [`WebhookSink`], shared by its requests in flight (the sink
/// itself holds the dead letter sink, which is not `Sync`).
struct Sender<'a> {
    client: &'a Client<HttpConnector, Full<Bytes>>,
    uri: &'a hyper::Uri,
    options: &'a WebhookOptions,
    metrics: &'a QueryMetrics,
    query_id: &'a str,
}

impl Sender<'_> {
    /// Sends `body` until it is delivered (`None`) or refused (`Some(why)`), retrying
    /// with backoff meanwhile (the query shows RETRYING).
    async fn send(&self, body: &Bytes, key: &str) -> Option<String> {
        let mut backoff = Backoff::default();
        let refused = loop {
            match send_once(self.client, self.uri, self.options, body, key).await {
                Outcome::Delivered => break None,
                Outcome::Retry(why) => {
                    let delay = backoff.next_delay();
                    let message = format!(
                        "webhook {} {}: {why} (attempt {}, next in {} ms)",
                        self.options.method,
                        self.options.url,
                        backoff.attempts(),
                        delay.as_millis()
                    );
                    tracing::warn!(query = %self.query_id, "{message}");
                    self.metrics.set_retrying(Some(message));
                    tokio::time::sleep(delay).await;
                }
                Outcome::Refused(why) => break Some(why),
            }
        };
        if backoff.attempts() > 0 {
            tracing::info!(query = %self.query_id, attempts = backoff.attempts(), "webhook deliveries resumed");
            self.metrics.set_retrying(None);
        }
        refused
    }
}

/// Sends one request of `options` to `uri`, once.
async fn send_once(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &hyper::Uri,
    options: &WebhookOptions,
    body: &Bytes,
    key: &str,
) -> Outcome {
    let mut request = hyper::Request::builder()
        .method(options.method.as_str())
        .uri(uri.clone())
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .header("user-agent", concat!("eddy/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &options.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = match request.body(Full::new(body.clone())) {
        Ok(r) => r,
        Err(e) => return Outcome::Refused(format!("the request cannot be built: {e}")),
    };
    let timeout = Duration::from_millis(options.request_timeout_ms);
    let exchange = async {
        let response = client.request(request).await.map_err(|e| describe(&e))?;
        let status = response.status();
        let mut answer = Vec::new();
        let mut body = response.into_body();
        while answer.len() < ANSWER_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        answer.extend_from_slice(data);
                    }
                }
                Some(Err(e)) if status.is_success() => return Err(format!("the answer broke off: {e}")),
                _ => break,
            }
        }
        answer.truncate(ANSWER_BYTES);
        Ok::<_, String>((status, String::from_utf8_lossy(&answer).trim().to_string()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Outcome::Retry(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(e)) => Outcome::Retry(e),
        Ok(Ok((status, _))) if status.is_success() => Outcome::Delivered,
        Ok(Ok((status, answer))) => {
            let what = if answer.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {answer}") };
            let code = status.as_u16();
            if code == 408 || code == 429 || status.is_server_error() {
                Outcome::Retry(what)
            } else {
                Outcome::Refused(what)
            }
        }
    }
}

/// A client error in a few words: the connection refused, reset or timed out.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> WebhookSink {
        let options = WebhookOptions {
            url: "http://127.0.0.1:9/hook".into(),
            method: "POST".into(),
            headers: vec![],
            batch_max_rows: 1,
            request_timeout_ms: 1000,
            max_inflight: 1,
            dead_letter: None,
        };
        WebhookSink::new(&options, "q1", Arc::new(QueryMetrics::default()), None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_depend_on_query_checkpoint_row_and_repeat_not_on_order() {
        let mut a = sink();
        let ka = [a.key_of(b"{\"x\":1}"), a.key_of(b"{\"x\":2}"), a.key_of(b"{\"x\":1}")];
        assert_eq!(ka[0].len(), 32);
        assert_ne!(ka[0], ka[2], "a repeated row gets its own key");
        // Another run from the same checkpoint, rows in another order: the same keys.
        let mut b = sink();
        let kb = [b.key_of(b"{\"x\":2}"), b.key_of(b"{\"x\":1}"), b.key_of(b"{\"x\":1}")];
        assert_eq!((kb[0].as_str(), kb[1].as_str(), kb[2].as_str()), (ka[1].as_str(), ka[0].as_str(), ka[2].as_str()));
        // After another checkpoint, new keys.
        let mut c = sink();
        c.anchor = 7;
        assert_ne!(c.key_of(b"{\"x\":1}"), ka[0]);
    }
}
