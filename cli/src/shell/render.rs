//! Renders ksqlDB entities as the shell shows them: aligned tables (comfy-table) for
//! listings, key/value blocks for descriptions, the message for statuses, and errors
//! with the offending line, a caret under the column, and the hint.

use comfy_table::presets::ASCII_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

use super::backend::ShellError;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(ASCII_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled).set_header(header.to_vec());
    t
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}...", one_line.chars().take(max - 3).collect::<String>())
    }
}

/// The text the shell prints for `entity`.
pub fn render(entity: &Value) -> String {
    let kind = entity["@type"].as_str().unwrap_or_default();
    let mut out = match kind {
        "currentStatus" => text(&entity["commandStatus"]["message"]),
        "streams" | "tables" => {
            let mut t =
                table(&[if kind == "streams" { "Stream Name" } else { "Table Name" }, "Connector", "Topic / Table", "Format", "Windowed"]);
            for r in entity[kind].as_array().into_iter().flatten() {
                t.add_row(vec![
                    text(&r["name"]),
                    text(&r["connector"]),
                    text(&r["topic"]),
                    text(&r["valueFormat"]),
                    text(&r["isWindowed"]),
                ]);
            }
            t.to_string()
        }
        "queries" => {
            let mut t = table(&[
                "Query ID",
                "Type",
                "Status",
                "Statement",
                "Rows In",
                "Rows Out",
                "Malformed",
                "Late",
                "Lag",
                "State Bytes",
                "Error",
            ]);
            for q in entity["queries"].as_array().into_iter().flatten() {
                let s = &q["stats"];
                t.add_row(vec![
                    text(&q["id"]),
                    text(&q["queryType"]),
                    text(&q["state"]),
                    shorten(q["queryString"].as_str().unwrap_or_default(), 50),
                    text(&s["rows_in"]),
                    text(&s["rows_out"]),
                    text(&s["malformed"]),
                    text(&s["late_rows"]),
                    text(&s["consumer_lag"]),
                    text(&s["state_bytes"]),
                    text(&q["error"]),
                ]);
            }
            t.to_string()
        }
        "kafka_topics" => {
            let mut t = table(&["Kafka Topic", "Partitions", "Partition Replicas"]);
            for topic in entity["topics"].as_array().into_iter().flatten() {
                let replicas =
                    topic["replicaInfo"].as_array().map(|r| r.iter().map(text).collect::<Vec<_>>().join(" ")).unwrap_or_default();
                let partitions = topic["replicaInfo"].as_array().map_or(0, Vec::len);
                t.add_row(vec![text(&topic["name"]), partitions.to_string(), replicas]);
            }
            t.to_string()
        }
        "properties" => {
            let mut t = table(&["Property", "Scope", "Value"]);
            for p in entity["properties"].as_array().into_iter().flatten() {
                t.add_row(vec![text(&p["name"]), text(&p["scope"]), text(&p["value"])]);
            }
            t.to_string()
        }
        "views" => {
            let mut t = table(&["View Name", "Statement"]);
            for v in entity["views"].as_array().into_iter().flatten() {
                t.add_row(vec![text(&v["name"]), text(&v["statementText"])]);
            }
            t.to_string()
        }
        "models" => {
            let mut t = table(&["Model Name", "Provider", "Type", "Path"]);
            for m in entity["models"].as_array().into_iter().flatten() {
                t.add_row(vec![text(&m["name"]), text(&m["provider"]), text(&m["type"]), text(&m["path"])]);
            }
            t.to_string()
        }
        "modelDescription" => {
            let m = &entity["model"];
            let columns = |v: &Value| {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{} {}", text(&c["name"]), text(&c["type"])))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "Name     : {}\nProvider : {}\nType     : {}\nPath     : {}\nInput    : {}\nOutput   : {}\nSHA-256  : {}",
                text(&m["name"]),
                text(&m["provider"]),
                text(&m["type"]),
                text(&m["path"]),
                columns(&m["inputs"]),
                columns(&m["outputs"]),
                text(&m["checksum"])
            )
        }
        "sourceDescription" => describe(&entity["sourceDescription"]),
        "queryDescription" => text(&entity["queryDescription"]["executionPlan"]),
        _ => serde_json::to_string_pretty(entity).unwrap_or_default(),
    };
    for w in entity["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nwarning: {}", text(&w["message"])));
    }
    out
}

fn describe(d: &Value) -> String {
    let mut out = format!(
        "Name                 : {}\nType                 : {}\nConnector            : {}\nTopic / Table        : {}\nFormat               : {}\n",
        text(&d["name"]),
        text(&d["type"]),
        text(&d["connector"]),
        text(&d["topic"]),
        text(&d["valueFormat"])
    );
    let mut fields = table(&["Field", "Type"]);
    for f in d["fields"].as_array().into_iter().flatten() {
        let mut ty = text(&f["schema"]["type"]);
        match f["type"].as_str() {
            Some("KEY") => ty.push_str("  (key)"),
            Some("PRIMARY_KEY") => ty.push_str("  (primary key)"),
            _ => {}
        }
        fields.add_row(vec![text(&f["name"]), ty]);
    }
    out.push_str(&fields.to_string());
    if d["extended"].as_bool() == Some(true) {
        out.push_str("\n\nWITH options:\n");
        for (k, v) in d["withOptions"].as_object().into_iter().flatten() {
            out.push_str(&format!("  {k} = '{}'\n", text(v)));
        }
        for (title, key) in [("Queries that read from this source", "readQueries"), ("Queries that write into this source", "writeQueries")]
        {
            out.push_str(&format!("\n{title}\n"));
            let list = d[key].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                out.push_str("  (none)\n");
            }
            for q in list {
                out.push_str(&format!(
                    "  {} ({}): {}\n",
                    text(&q["id"]),
                    text(&q["state"]),
                    shorten(q["queryString"].as_str().unwrap_or_default(), 70)
                ));
            }
        }
        let c = &d["counters"];
        out.push_str(&format!(
            "\nCounters: rows in {}, rows out {}, malformed {}, late {}",
            text(&c["rows_in"]),
            text(&c["rows_out"]),
            text(&c["malformed"]),
            text(&c["late_rows"])
        ));
    }
    out
}

/// The error, the input line it points at with a caret under the column, and the hint.
pub fn render_error(input: &str, error: &ShellError) -> String {
    let mut out = match error.position {
        Some(p) => format!("error: {} (line {}, column {})\n", error.message, p.line, p.column),
        None => format!("error: {}\n", error.message),
    };
    if let Some(p) = error.position {
        if let Some(line) = input.lines().nth(p.line.saturating_sub(1) as usize) {
            let number = p.line.to_string();
            let pad = " ".repeat(number.len());
            out.push_str(&format!("{pad} |\n{number} | {line}\n{pad} | {}^\n", " ".repeat(p.column.saturating_sub(1) as usize)));
        }
    }
    if let Some(h) = &error.hint {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}

/// Column widths for live rows: each at least its header and 12 characters.
pub fn widths(columns: &[String]) -> Vec<usize> {
    columns.iter().map(|c| c.chars().count().max(12)).collect()
}

/// A `+----+----+` rule.
pub fn rule(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
    }
    s
}

/// One `| a | b |` line, cells padded to `widths`.
pub fn row_line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::from("|");
    for (cell, w) in cells.iter().zip(widths) {
        s.push_str(&format!(" {cell:<w$} |"));
    }
    s
}

/// A row's cells as text.
pub fn cells(row: &[Value]) -> Vec<String> {
    row.iter().map(text).collect()
}
