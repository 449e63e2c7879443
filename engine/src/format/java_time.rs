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

/// `value` read with fixed-width `pieces`: milliseconds since the epoch (UTC), or `None`
/// when it does not fit them exactly (the caller then asks chrono).
fn parse_fixed(pieces: &[Piece], value: &[u8]) -> Option<i64> {
    let mut fields = [1970i64, 1, 1, 0, 0, 0, 0];
    let mut at = 0;
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
    let [year, month, day, hour, minute, second, millis] = fields;
    if at != value.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
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
        Ok(CompiledFormat { items, format: format.to_string(), offset, fixed })
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
}
