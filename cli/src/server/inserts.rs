//! `POST /inserts-stream` (ksqlDB's API, HTTP/1.1 or HTTP/2): the body is the target as
//! a JSON object (`{"target": "S", "properties": {}}`) and then one JSON object per row
//! (one per line, as ksqlDB's clients send them),
//! each a row by column name; the answer streams one line per row as it is written:
//! `{"status":"ok","seq":n}`, or `{"status":"error","seq":n,"error_code":...,"message":...}`
//! for a row that cannot be (the others still are); with `Accept: application/json`, one
//! JSON array of those objects. Each row is written to the topic
//! and acknowledged by the broker before its answer, so an `ok` row is durable.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_engine::format::{JsonDecoder, ValueDecoder};
use futures::StreamExt;
use serde_json::{json, Value};

use super::{json_response, AppState};

/// Longest line (one row) accepted, in bytes.
const MAX_LINE: usize = 1 << 20;

fn error_line(seq: i64, code: u32, message: &str) -> Bytes {
    Bytes::from(format!("{}\n", json!({"status": "error", "seq": seq, "error_code": code, "message": message})))
}

/// The bytes of the next JSON value in `buffer`, reading more of `stream` as needed:
/// `None` at the end of the body, `Some(Err)` for text that is not JSON (or a value
/// longer than [`MAX_LINE`]). Values may span lines or share one, as JSON allows.
async fn next_value<S>(buffer: &mut Vec<u8>, stream: &mut S) -> Option<Result<Vec<u8>, String>>
where
    S: futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    let mut ended = false;
    loop {
        let start = buffer.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(start) = start {
            let mut values = serde_json::Deserializer::from_slice(&buffer[start..]).into_iter::<serde::de::IgnoredAny>();
            match values.next() {
                Some(Ok(_)) => {
                    let end = start + values.byte_offset();
                    let value = buffer[start..end].to_vec();
                    buffer.drain(..end);
                    return Some(Ok(value));
                }
                Some(Err(e)) if !e.is_eof() || ended => {
                    buffer.clear();
                    return Some(Err(e.to_string()));
                }
                _ => {}
            }
        } else if ended {
            return None;
        }
        if ended {
            return None;
        }
        if buffer.len() > MAX_LINE {
            buffer.clear();
            return Some(Err(format!("a row longer than {MAX_LINE} bytes")));
        }
        match stream.next().await {
            Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
            Some(Err(_)) | None => ended = true,
        }
    }
}

pub(crate) async fn inserts_stream(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    // As on /query-stream: `Accept: application/json` gets one JSON array of the
    // acknowledgements (the npm ksqldb-client parses that), else one per line.
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let array = accept.contains("application/json") && !accept.contains(super::push::DELIMITED);
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let bad = |message: String| {
        json_response(&headers, StatusCode::BAD_REQUEST, &json!({"@type": "generic_error", "error_code": 40000, "message": message}))
    };
    // The first value: the target.
    let first = match next_value(&mut buffer, &mut stream).await {
        Some(Ok(first)) => first,
        Some(Err(e)) => return bad(format!("the first line is not JSON: {e}")),
        None => return bad("the request has no target: send {\"target\": \"<stream>\", \"properties\": {}} first".into()),
    };
    let target =
        match serde_json::from_slice::<Value>(&first).ok().and_then(|v| v.get("target").and_then(Value::as_str).map(str::to_string)) {
            Some(t) => t,
            None => return bad("the first line must name the target: {\"target\": \"<stream>\"}".into()),
        };
    let opened = state.engine.lock().await.insert_target(&target);
    let (relation, factory) = match opened {
        Ok(o) => o,
        Err(e) => return bad(e.to_string()),
    };
    let mut sink = match eddy_engine::open_insert_sink(&factory, &relation).await {
        Ok(s) => s,
        Err(e) => {
            return json_response(
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"@type": "generic_error", "error_code": 50000, "message": e.to_string()}),
            )
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    // Frames each acknowledgement line: as is, or as an element of one JSON array.
    let frame = move |line: Bytes, first: bool| -> Bytes {
        if !array {
            return line;
        }
        let text = String::from_utf8_lossy(&line);
        Bytes::from(format!("{}{}", if first { "[" } else { "," }, text.trim_end()))
    };
    tokio::spawn(async move {
        let mut decoder = JsonDecoder::new(relation.schema.clone());
        let mut seq: i64 = 0;
        while let Some(value) = next_value(&mut buffer, &mut stream).await {
            let answer = match value {
                Err(e) => {
                    let _ = tx.send(frame(error_line(seq, 40000, &format!("not JSON: {e}")), seq == 0)).await;
                    seq += 1;
                    break;
                }
                Ok(value) => match decoder.decode(&[Some(value.as_slice())]) {
                    Ok(decoded) if decoded.malformed.is_empty() && decoded.batch.num_rows() == 1 => {
                        match async {
                            sink.write(decoded.batch).await?;
                            sink.flush().await
                        }
                        .await
                        {
                            Ok(()) => Bytes::from(format!("{}\n", json!({"status": "ok", "seq": seq}))),
                            Err(e) => error_line(seq, 50000, &e.to_string()),
                        }
                    }
                    Ok(decoded) => {
                        let reason = decoded.malformed.first().map(|m| m.reason.clone()).unwrap_or_else(|| "not one row".into());
                        error_line(seq, 40000, &format!("cannot insert the row: {reason}"))
                    }
                    Err(e) => error_line(seq, 50000, &e.to_string()),
                },
            };
            if tx.send(frame(answer, seq == 0)).await.is_err() {
                break;
            }
            seq += 1;
        }
        let _ = sink.flush().await;
        if array {
            let _ = tx.send(Bytes::from(if seq == 0 { "[]" } else { "]" })).await;
        }
    });
    let body =
        Body::from_stream(futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, std::io::Error>(b), rx)) },
        ));
    let content_type = if array { "application/json" } else { super::push::DELIMITED };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
