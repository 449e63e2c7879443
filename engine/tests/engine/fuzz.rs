//! Fuzzing without a nightly toolchain: proptest feeds the DELIMITED and JSON decoders
//! arbitrary bytes (and near-valid text, where the bugs hide) and the SQL parser arbitrary
//! text and keyword soups. Nothing may panic: a bad record is a `Malformed` entry, a bad
//! statement an error. Every decoded batch must also account for every record (good +
//! malformed = input). `PROPTEST_CASES` raises the case count (default here: 2,000 each).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use eddy_engine::format::decoder;
use eddy_engine::options::Format;
use eddy_engine::sql::parser::parse_sql;
use proptest::prelude::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int32, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("big", DataType::Int64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]))
}

/// Decodes `values` with `format` and checks that every record is either a row or malformed.
fn decode_all(format: Format, values: &[Option<Vec<u8>>]) -> Result<(), TestCaseError> {
    let slices: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
    let decoded = decoder(format, schema()).decode(&slices).map_err(|e| TestCaseError::fail(format!("decoder error: {e}")))?;
    prop_assert_eq!(decoded.batch.num_rows() + decoded.malformed.len(), values.len());
    prop_assert_eq!(decoded.rows.len(), decoded.batch.num_rows());
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000),
        ..ProptestConfig::default()
    }
}

/// Any bytes, or none (a record without a value), up to 4 KiB each.
fn any_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(0.95, prop::collection::vec(any::<u8>(), 0..4096))
}

/// Text close to a JSON object of the schema: the shapes a real producer gets wrong.
fn near_json() -> impl Strategy<Value = Option<Vec<u8>>> {
    let key = prop_oneof![prop::sample::select(vec!["id", "n", "amount", "big", "flag", "at"]).prop_map(String::from), "[a-z]{0,3}"];
    let value = prop_oneof![
        "-?[0-9]{1,25}",
        "-?[0-9]{1,5}\\.[0-9]{0,5}(e-?[0-9]{1,4})?",
        "\"[^\"\\\\]{0,8}\"",
        "\"\\\\u[0-9a-fA-F]{0,4}\"",
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[".to_string()),
        Just("{}".to_string()),
        Just("[[[]]]".to_string()),
        Just("\"2024-01-01T00:00:00Z\"".to_string()),
    ];
    (prop::collection::vec((key, value), 0..8), any::<bool>(), any::<bool>()).prop_map(|(pairs, close, comma)| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let mut s = format!("{{{}", body.join(if comma { "," } else { " " }));
        if close {
            s.push('}');
        }
        Some(s.into_bytes())
    })
}

/// Text close to a DELIMITED line of the schema.
fn near_delimited() -> impl Strategy<Value = Option<Vec<u8>>> {
    let field = prop_oneof![
        "[a-z]{0,5}",
        "-?[0-9]{1,22}",
        "-?[0-9]{1,4}\\.[0-9]{1,4}",
        Just("\"".to_string()),
        Just("\"a,b\"".to_string()),
        Just("true".to_string()),
        Just(String::new())
    ];
    prop::collection::vec(field, 0..10).prop_map(|fields| Some(fields.join(",").into_bytes()))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_decoder_never_panics_on_bytes(values in prop::collection::vec(any_value(), 0..16)) {
        decode_all(Format::Json, &values)?;
    }

    #[test]
    fn json_decoder_never_panics_on_near_json(values in prop::collection::vec(near_json(), 0..16)) {
        decode_all(Format::Json, &values)?;
    }

    #[test]
    fn delimited_decoder_never_panics_on_bytes(values in prop::collection::vec(any_value(), 0..16)) {
        decode_all(Format::delimited(b','), &values)?;
    }

    #[test]
    fn delimited_decoder_never_panics_on_near_lines(values in prop::collection::vec(near_delimited(), 0..16)) {
        decode_all(Format::delimited(b','), &values)?;
    }

    #[test]
    fn sql_parser_never_panics_on_text(sql in "\\PC{0,300}") {
        let _ = parse_sql(&sql);
    }

    #[test]
    fn sql_parser_never_panics_on_keyword_soup(words in prop::collection::vec(prop_oneof![
        Just("CREATE"), Just("STREAM"), Just("TABLE"), Just("AS"), Just("SELECT"), Just("FROM"), Just("WHERE"), Just("WITH"),
        Just("("), Just(")"), Just(","), Just(";"), Just("'x'"), Just("="), Just("INSERT"), Just("INTO"), Just("MATCH_RECOGNIZE"),
        Just("PARTITION"), Just("BY"), Just("ORDER"), Just("MEASURES"), Just("PATTERN"), Just("DEFINE"), Just("WITHIN"), Just("INTERVAL"),
        Just("'5'"), Just("MINUTE"), Just("A"), Just("B"), Just("*"), Just("?"), Just("+"), Just("{"), Just("}"), Just("TUMBLE"),
        Just("DESCRIPTOR"), Just("GROUP"), Just("EMIT"), Just("CHANGES"), Just("WATERMARK"), Just("FOR"), Just("KEY"), Just("PRIMARY"),
        Just("SHOW"), Just("QUERIES"), Just("DROP"), Just("TERMINATE"), Just("EXPLAIN"), Just("SET"), Just("ts"), Just("x"), Just("1"),
    ], 0..40)) {
        let _ = parse_sql(&words.join(" "));
    }

    /// Splitting finds exactly the statements that were joined, with their own texts and
    /// positions, whatever whitespace, comments and wide characters lie between them.
    #[test]
    fn splitting_finds_each_statement_with_its_text(
        parts in prop::collection::vec((prop::sample::select(vec![
            "SHOW STREAMS", "SHOW QUERIES", "SET 'a'='b'", "SET 'ü'='日本'", "UNSET 'x'", "DESCRIBE s", "SELECT a FROM s EMIT CHANGES",
        ]), prop::sample::select(vec![" ", "\n", "\r\n", "\t", " -- note ;\n", " /* ; */ ", "\n\n  "])), 1..60),
    ) {
        let sql: String = parts.iter().map(|(stmt, gap)| format!("{stmt};{gap}")).collect();
        let split = eddy_engine::split_statements(&sql).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let texts: Vec<&str> = split.iter().map(|s| s.text.as_str()).collect();
        let want: Vec<&str> = parts.iter().map(|(stmt, _)| *stmt).collect();
        prop_assert_eq!(texts, want);
        prop_assert!(split.windows(2).all(|w| (w[0].position.line, w[0].position.column) < (w[1].position.line, w[1].position.column)));
    }

    /// A request body up to 16 KiB of anything: the parser of statement requests and the
    /// splitter answer an error or statements, never a panic.
    #[test]
    fn statement_texts_of_any_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..16_384)) {
        let text = String::from_utf8_lossy(&body);
        let _ = eddy_engine::split_statements(&text);
    }
}

/// The sizes a fuzzer rarely reaches: 8 MB values, a million nested brackets, a line
/// with a million fields.
#[test]
fn huge_and_deep_values_are_malformed_not_fatal() {
    let values = vec![
        Some(vec![b'x'; 8 << 20]),
        Some("[".repeat(1_000_000).into_bytes()),
        Some(format!("{{\"id\":{}}}", "[".repeat(1_000_000)).into_bytes()),
        Some(",".repeat(1_000_000).into_bytes()),
        Some(format!("{{\"id\":\"{}\"}}", "y".repeat(8 << 20)).into_bytes()),
    ];
    for format in [Format::Json, Format::delimited(b',')] {
        decode_all(format, &values).unwrap_or_else(|e| panic!("{format}: {e}"));
    }
}
