//! Randomized robustness of the record decoders: arbitrary bytes never panic or fail a
//! batch; every value is either exactly one row or exactly one malformed record; and
//! every well-formed value is decoded, in order, whatever garbage surrounds it.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use eddy_engine::format::{decoder, Decoded};
use eddy_engine::options::Format;

/// xorshift64*: a small deterministic generator, so failures reproduce exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int32, true),
        Field::new("ok", DataType::Boolean, true),
    ]))
}

/// A value that is well-formed (`Some(n)`, the row's `n`) or garbage (`None`).
fn value(rng: &mut Rng, format: Format, i: u64) -> (Vec<u8>, Option<i32>) {
    let n = i as i32;
    match (rng.below(6), format) {
        (0..=2, Format::Json) => (format!(r#"{{"id": "r{i}", "n": {n}, "ok": true}}"#).into_bytes(), Some(n)),
        (0..=2, _) => (format!("r{i},{n},false").into_bytes(), Some(n)),
        (3, _) => {
            // Random bytes of random length, including NUL, quotes, separators, line breaks, invalid UTF-8.
            let len = rng.below(40) as usize;
            let alphabet = b",\"{}:\n\r\0 abc123\xff\xfe";
            ((0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect(), None)
        }
        (4, Format::Json) => (format!(r#"{{"id": "r{i}", "n": "x{n}"}}"#).into_bytes(), None),
        (4, _) => (format!("r{i},{n}").into_bytes(), None),
        (_, Format::Json) => (format!(r#"{{"id": "r{i}", "n": {n}"#).into_bytes(), None),
        (_, _) => (format!("r{i},{n},true,extra").into_bytes(), None),
    }
}

fn check(format: Format, seed: u64) {
    let mut rng = Rng(seed);
    let mut decoder = decoder(format, schema());
    for batch in 0..40u64 {
        let size = 1 + rng.below(300);
        let generated: Vec<(Vec<u8>, Option<i32>)> = (0..size).map(|i| value(&mut rng, format, batch * 1000 + i)).collect();
        let values: Vec<Option<&[u8]>> = generated.iter().map(|(v, _)| Some(v.as_slice())).collect();
        let Decoded { batch: rows, rows: indices, malformed } =
            decoder.decode(&values).unwrap_or_else(|e| panic!("{format} seed {seed}: decode failed: {e}"));
        assert_eq!(rows.num_rows(), indices.len());
        assert_eq!(indices.len() + malformed.len(), values.len(), "{format} seed {seed}: every value is a row or malformed");
        let mut all: Vec<usize> = indices.iter().copied().chain(malformed.iter().map(|m| m.index)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..values.len()).collect::<Vec<_>>(), "{format} seed {seed}: each value exactly once");
        let expected: Vec<usize> = generated.iter().enumerate().filter(|(_, (_, good))| good.is_some()).map(|(i, _)| i).collect();
        for i in &expected {
            assert!(
                indices.contains(i),
                "{format} seed {seed}: well-formed value {:?} was lost",
                String::from_utf8_lossy(&generated[*i].0)
            );
        }
        let ns = rows.column(1).as_primitive::<Int32Type>();
        for (row, &i) in indices.iter().enumerate() {
            if let Some(n) = generated[i].1 {
                assert_eq!(ns.value(row), n, "{format} seed {seed}: row {row} decoded from value {i}");
            }
        }
    }
}

#[test]
fn delimited_never_panics_and_loses_nothing() {
    for seed in [1, 2, 3, 0xdead_beef, 42] {
        check(Format::delimited(b','), seed);
    }
}

#[test]
fn json_never_panics_and_loses_nothing() {
    for seed in [1, 2, 3, 0xdead_beef, 42] {
        check(Format::Json, seed);
    }
}
