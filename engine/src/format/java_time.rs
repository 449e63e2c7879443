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
    }
}
