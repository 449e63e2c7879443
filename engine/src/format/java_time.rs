//! Java `DateTimeFormatter` patterns (ksqlDB's `timestamp_format`, Flink's
//! `TO_TIMESTAMP(string, format)`) read with chrono.

/// Milliseconds since the epoch of `value` read with a chrono `format` (from
/// [`java_to_chrono`]); a format without an offset reads UTC, one with only a date reads
/// midnight. A trailing `Z` is read as `+00:00` (Java's `X`). `None` when it does not parse.
pub fn parse_with_format(value: &str, format: &str) -> Option<i64> {
    let value = value.trim();
    if format.contains("%#z") || format.contains("%z") || format.contains("%:z") {
        let fixed;
        let value = match value.strip_suffix('Z') {
            Some(rest) => {
                fixed = format!("{rest}+00:00");
                fixed.as_str()
            }
            None => value,
        };
        return chrono::DateTime::parse_from_str(value, format).ok().map(|d| d.timestamp_millis());
    }
    match chrono::NaiveDateTime::parse_from_str(value, format) {
        Ok(d) => Some(d.and_utc().timestamp_millis()),
        Err(e) if e.kind() == chrono::format::ParseErrorKind::NotEnough => {
            chrono::NaiveDate::parse_from_str(value, format).ok().map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis())
        }
        Err(_) => None,
    }
}

/// A chrono format compiled once for parsing many values (a constant pattern of
/// `TO_TIMESTAMP`, a source's `timestamp_format`): the same results as
/// [`parse_with_format`] without reading the format again for every value.
#[derive(Debug, Clone)]
pub struct CompiledFormat {
    items: Vec<chrono::format::Item<'static>>,
    format: String,
    offset: bool,
    /// The format as fixed-width digits and literal text, when it is only that
    /// (`yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` and the like): read without chrono.
    fixed: Option<Vec<Piece>>,
    /// For `fixed`: the number of pieces up to the last of the year, month, day, hour
    /// and minute, and the width of their text (what [`DateMemo`] remembers).
    split: Option<(usize, usize)>,
}

/// What [`CompiledFormat::parse_ms_memo`] remembers of the value before: the text up to
/// its minute and the fields read from it. Values of a stream mostly share it (events of
/// the same minute), so only the seconds and milliseconds are read again.
#[derive(Debug, Default)]
pub struct DateMemo {
    prefix: Vec<u8>,
    fields: [i64; 7],
    /// Milliseconds since the epoch of the remembered minute; `None` when no such
    /// minute exists (month 13, Feb 30).
    minute_ms: Option<i64>,
}

/// One piece of a fixed-width format.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// `n` digits of a field.
    Digits(Field, usize),
    /// Text that must be there as it is.
    Literal(u8),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
}

/// The pieces of a chrono `format` made only of `%Y %m %d %H %M %S %3f` and literal
/// ASCII text; `None` for any other format.
fn fixed_pieces(format: &str) -> Option<Vec<Piece>> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            if !bytes[i].is_ascii() || (bytes[i].is_ascii_whitespace() && bytes[i] != b' ') {
                return None;
            }
            pieces.push(Piece::Literal(bytes[i]));
            i += 1;
            continue;
        }
        let (piece, width) = match bytes.get(i + 1..i + 3) {
            Some(b"3f") => (Piece::Digits(Field::Millis, 3), 3),
            _ => match bytes.get(i + 1)? {
                b'Y' => (Piece::Digits(Field::Year, 4), 2),
                b'm' => (Piece::Digits(Field::Month, 2), 2),
                b'd' => (Piece::Digits(Field::Day, 2), 2),
                b'H' => (Piece::Digits(Field::Hour, 2), 2),
                b'M' => (Piece::Digits(Field::Minute, 2), 2),
                b'S' => (Piece::Digits(Field::Second, 2), 2),
                b'%' => (Piece::Literal(b'%'), 2),
                _ => return None,
            },
        };
        pieces.push(piece);
        i += width;
    }
    // A date is needed; a time of day without a date is not a timestamp.
    let has = |f: Field| pieces.iter().any(|p| matches!(p, Piece::Digits(g, _) if *g == f));
    (has(Field::Year) && has(Field::Month) && has(Field::Day)).then_some(pieces)
}

/// Days from 1970-01-01 to the date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// For fixed-width `pieces`: how many pieces lead up to the last date, hour or minute field,
/// and the width of their text; `None` when there is no such field.
fn prefix_split(pieces: &[Piece]) -> Option<(usize, usize)> {
    let mut width = 0;
    let mut split = None;
    for (i, piece) in pieces.iter().enumerate() {
        width += match piece {
            Piece::Literal(_) => 1,
            Piece::Digits(_, n) => *n,
        };
        if matches!(piece, Piece::Digits(f, _) if !matches!(f, Field::Second | Field::Millis)) {
            split = Some((i + 1, width));
        }
    }
    split
}

/// `value` read with fixed-width `pieces`: milliseconds since the epoch (UTC), or `None`
/// when it does not fit them exactly (the caller then asks chrono).
fn parse_fixed(pieces: &[Piece], value: &[u8]) -> Option<i64> {
    parse_pieces(pieces, value, 0, UNSET).filter(|(at, _)| *at == value.len()).and_then(|(_, fields)| fixed_ms(fields))
}

/// The fields before any piece is read: 1970-01-01 00:00:00.000.
const UNSET: [i64; 7] = [1970, 1, 1, 0, 0, 0, 0];

/// Reads `pieces` from `value[at..]` into `fields`: the offset after them and the fields,
/// or `None` when a piece is not there.
fn parse_pieces(pieces: &[Piece], value: &[u8], mut at: usize, mut fields: [i64; 7]) -> Option<(usize, [i64; 7])> {
    for piece in pieces {
        match piece {
            Piece::Literal(b) => {
                if value.get(at) != Some(b) {
                    return None;
                }
                at += 1;
            }
            Piece::Digits(field, width) => {
                let digits = value.get(at..at + width)?;
                let mut n = 0i64;
                for d in digits {
                    if !d.is_ascii_digit() {
                        return None;
                    }
                    n = n * 10 + i64::from(d - b'0');
                }
                fields[*field as usize] = n;
                at += width;
            }
        }
    }
    Some((at, fields))
}

/// Milliseconds since the epoch (UTC) of the read `fields`; `None` for a date or time
/// that does not exist (month 13, Feb 29 of a common year, 24:00).
fn fixed_ms(fields: [i64; 7]) -> Option<i64> {
    let [year, month, day, hour, minute, second, millis] = fields;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some((days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000 + millis)
}

impl CompiledFormat {
    /// Compiles a chrono `format` (from [`java_to_chrono`]).
    ///
    /// Errors: chrono cannot read the format.
    pub fn new(format: &str) -> std::result::Result<Self, String> {
        let items =
            chrono::format::StrftimeItems::new(format).parse_to_owned().map_err(|e| format!("cannot read the format {format}: {e}"))?;
        let offset = format.contains("%#z") || format.contains("%z") || format.contains("%:z");
        let fixed = if offset { None } else { fixed_pieces(format) };
        let split = fixed.as_deref().and_then(prefix_split);
        Ok(CompiledFormat { items, format: format.to_string(), offset, fixed, split })
    }

    /// [`Self::parse_ms`] of a value that likely shares its date, hour and minute with the
    /// value before (`memo`): the same answer, the shared text compared instead of read.
    pub fn parse_ms_memo(&self, value: &str, memo: &mut DateMemo) -> Option<i64> {
        if let (Some(pieces), Some((k, width))) = (self.fixed.as_deref(), self.split) {
            let bytes = value.trim().as_bytes();
            let head = bytes.get(..width);
            let fields = match head == Some(memo.prefix.as_slice()) {
                true => Some(memo.fields),
                false => parse_pieces(&pieces[..k], bytes, 0, UNSET).map(|(_, fields)| {
                    memo.prefix.clear();
                    memo.prefix.extend_from_slice(&bytes[..width]);
                    memo.fields = fields;
                    let [year, month, day, hour, minute, ..] = fields;
                    memo.minute_ms = fixed_ms([year, month, day, hour, minute, 0, 0]);
                    fields
                }),
            };
            // What follows the minute holds only seconds, milliseconds and literal text.
            let read = fields.and_then(|f| parse_pieces(&pieces[k..], bytes, width, f));
            if let (Some((at, [.., second, millis])), Some(minute_ms)) = (read, memo.minute_ms) {
                if at == bytes.len() && second <= 59 {
                    return Some(minute_ms + second * 1_000 + millis);
                }
            }
        }
        self.parse_ms(value)
    }

    /// Milliseconds since the epoch of `value`, as [`parse_with_format`] reads it.
    pub fn parse_ms(&self, value: &str) -> Option<i64> {
        let value = value.trim();
        if let Some(ms) = self.fixed.as_deref().and_then(|p| parse_fixed(p, value.as_bytes())) {
            return Some(ms);
        }
        let mut parsed = chrono::format::Parsed::new();
        if chrono::format::parse(&mut parsed, value, self.items.iter()).is_err() {
            // A `Z` where the format has an offset: the slower reading respells it.
            return match self.offset && value.ends_with('Z') {
                true => parse_with_format(value, &self.format),
                false => None,
            };
        }
        if self.offset {
            return parsed.to_datetime().ok().map(|d| d.timestamp_millis());
        }
        match parsed.to_naive_datetime_with_offset(0) {
            Ok(d) => Some(d.and_utc().timestamp_millis()),
            Err(e) if e.kind() == chrono::format::ParseErrorKind::NotEnough => {
                parsed.to_naive_date().ok().map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis())
            }
            Err(_) => None,
        }
    }
}

/// Translates a Java `DateTimeFormatter` pattern (ksqlDB's `timestamp_format`) to a
/// chrono format: `yyyy MM dd HH mm ss SSS`, `'literal'` text, `''` for a quote, and the
/// offsets `X XX XXX Z`.
///
/// Errors: a pattern letter chrono cannot read, named.
pub fn java_to_chrono(pattern: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('a', _) => "%p",
            ('X' | 'x' | 'Z', _) => "%#z",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            _ => return Err(format!("unsupported letter '{}' in the date-time pattern '{pattern}'", c.to_string().repeat(n))),
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns() {
        assert_eq!(java_to_chrono("yyyy-MM-dd'T'HH:mm:ssX").as_deref(), Ok("%Y-%m-%dT%H:%M:%S%#z"));
        assert_eq!(java_to_chrono("yyyy-MM-dd HH:mm:ss.SSS").as_deref(), Ok("%Y-%m-%d %H:%M:%S.%3f"));
        assert_eq!(java_to_chrono("yyyy-MM-dd''HH").as_deref(), Ok("%Y-%m-%d'%H"));
        assert_eq!(java_to_chrono("yyyy-QQ"), Err("unsupported letter 'QQ' in the date-time pattern 'yyyy-QQ'".into()));
        let f = java_to_chrono("yyyy-MM-dd'T'HH:mm:ssX").unwrap_or_default();
        assert_eq!(parse_with_format("2026-01-01T10:00:00Z", &f), Some(1_767_261_600_000));
        assert_eq!(parse_with_format("2026-01-01T12:00:00+02:00", &f), Some(1_767_261_600_000));
        assert_eq!(parse_with_format("2026-01-01 10:00", &f), None);
        let date = java_to_chrono("yyyy-MM-dd").unwrap_or_default();
        assert_eq!(parse_with_format("2026-01-01", &date), Some(1_767_225_600_000));
        assert_eq!(parse_with_format("2026-01-0", &date), None);
        // The fixed-width reader's own answers (no chrono): a leap day's last millisecond,
        // and a day before 1970.
        let fixed = CompiledFormat::new("%Y-%m-%d %H:%M:%S.%3f").unwrap_or_else(|e| panic!("{e}"));
        assert!(fixed.fixed.is_some());
        assert_eq!(fixed.parse_ms("2024-02-29 23:59:59.999"), Some(1_709_251_199_999));
        assert_eq!(fixed.parse_ms("1969-12-31 23:59:59.000"), Some(-1_000));
        assert_eq!(fixed.parse_ms("2023-02-29 00:00:00.000"), None);
        // The compiled format reads what parse_with_format reads.
        for (pattern, value) in [
            ("yyyy-MM-dd'T'HH:mm:ssX", "2026-01-01T10:00:00Z"),
            ("yyyy-MM-dd'T'HH:mm:ssX", "2026-01-01T12:00:00+02:00"),
            ("yyyy-MM-dd'T'HH:mm:ssX", "2026-01-01 10:00"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-01-01T00:00:01.500Z"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", " 2026-01-01T00:00:01.500Z "),
            ("yyyy-MM-dd", "2026-01-01"),
            ("yyyy-MM-dd", "2026-01-01 10:00"),
            ("dd/MM/yyyy HH:mm", "02/01/2026 10:30"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "2024-02-29 23:59:59.999"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "2023-02-29 23:59:59.999"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "2026-13-01 00:00:00.000"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "1969-12-31 23:59:59.000"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "2026-1-2 03:04:05.006"),
            ("yyyyMMdd", "20260102"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-01-01T00:00:01.5Z"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-01-01T00:00:01.500Zx"),
        ] {
            let f = java_to_chrono(pattern).unwrap_or_default();
            let compiled = CompiledFormat::new(&f).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(compiled.parse_ms(value), parse_with_format(value, &f), "{pattern} {value}");
            if pattern == "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'" || pattern == "yyyy-MM-dd HH:mm:ss.SSS" || pattern == "yyyyMMdd" {
                assert!(compiled.fixed.is_some(), "{pattern} is read without chrono");
            }
        }
    }

    #[test]
    fn a_memo_of_the_minute_before_gives_the_same_answers() {
        let f = java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").unwrap_or_default();
        let compiled = CompiledFormat::new(&f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.split, Some((9, 16)), "the memo keeps `2026-01-01T00:00`");
        let mut memo = DateMemo::default();
        let values = [
            "2026-01-01T00:00:01.500Z",
            "2026-01-01T00:00:02.000Z",  // same minute: only the seconds read
            "2026-01-01T00:00:61.000Z",  // same minute, no such second
            "2026-01-01T00:00:03.25Z",   // same minute, short milliseconds: chrono's answer
            "2026-01-01T00:01:00.000Z",  // the next minute
            "2026-02-30T00:01:00.000Z",  // no such day
            "2026-01-01T00:01:00.000Z",  // after a day that does not exist
            "2026-01-01T00:0",           // shorter than the memo
            " 2026-01-01T00:01:59.999Z", // spaces around
            "2024-02-29T23:59:59.999Z",
        ];
        for v in values {
            assert_eq!(compiled.parse_ms_memo(v, &mut memo), parse_with_format(v, &f), "{v}");
        }
        // The memo was read and kept up to date, not passed by for the full reader.
        assert_eq!(memo.prefix, b"2024-02-29T23:59");
        assert_eq!(memo.minute_ms, Some(1_709_251_140_000));
        // A format without a date or minute field has no memo and reads as before.
        let seconds = CompiledFormat::new("%S.%3f").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seconds.split, None);
        assert_eq!(seconds.parse_ms_memo("05.250", &mut DateMemo::default()), seconds.parse_ms("05.250"));
    }
}
