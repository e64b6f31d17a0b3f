//! Timestamps from every format's conventions, normalized to UTC milliseconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// A parsed time: Unix milliseconds UTC, and whether the source gave no zone (then the
/// time was read as UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedTime {
    /// Unix milliseconds, UTC.
    pub(crate) ms: i64,
    /// The text carried no time zone.
    pub(crate) zone_missing: bool,
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
];

const ZONED_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f %z",
    "%Y-%m-%dT%H:%M:%S%z",
];

/// Parses ISO-8601 / RFC 3339 style dates, with or without a zone, with `T` or a space,
/// with `-` or `/` between date parts, with any fraction of seconds.
pub(crate) fn parse_datetime(text: &str) -> Option<ParsedTime> {
    let text = text.trim();
    if text.len() < 10 || !text.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if let Some(fast) = parse_iso_fast(text) {
        return Some(fast);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(ParsedTime {
            ms: dt.timestamp_millis(),
            zone_missing: false,
        });
    }
    let zulu = text.strip_suffix('Z').or_else(|| text.strip_suffix(" UTC"));
    if let Some(naive) = zulu.and_then(parse_naive) {
        return Some(ParsedTime {
            ms: naive.and_utc().timestamp_millis(),
            zone_missing: false,
        });
    }
    for format in ZONED_FORMATS {
        if let Ok(dt) = DateTime::parse_from_str(text, format) {
            return Some(ParsedTime {
                ms: dt.timestamp_millis(),
                zone_missing: false,
            });
        }
    }
    parse_naive(text).map(|n| ParsedTime {
        ms: n.and_utc().timestamp_millis(),
        zone_missing: true,
    })
}

/// `n` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// The common shape without format-string interpretation:
/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z| UTC|±HH:MM|±HHMM]` (also with `/` in the
/// date). Anything else is left to the general parser.
fn parse_iso_fast(text: &str) -> Option<ParsedTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || !matches!(b[4], b'-' | b'/')
        || b[7] != b[4]
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let mut i = 19;
    let mut millis = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let rest = &text[i..];
    let (offset_secs, zone_missing) = match rest {
        "" => (0, true),
        "Z" | " UTC" | "z" => (0, false),
        _ => {
            let r = rest.as_bytes();
            let sign = match r.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (h, m) = match r.len() {
                6 if r[3] == b':' => (digits(r, 1, 2)?, digits(r, 4, 2)?),
                5 => (digits(r, 1, 2)?, digits(r, 3, 2)?),
                _ => return None,
            };
            (sign * i64::from(h * 3600 + m * 60), false)
        }
    };
    let year = i32::try_from(year).ok()?;
    let naive = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_milli_opt(hour, minute, second, millis)?;
    Some(ParsedTime {
        ms: naive.and_utc().timestamp_millis() - offset_secs * 1000,
        zone_missing,
    })
}

fn parse_naive(text: &str) -> Option<NaiveDateTime> {
    NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// Parses a Unix time given as a number of seconds, milliseconds, microseconds or
/// nanoseconds (told apart by magnitude), integer or fractional.
pub(crate) fn parse_epoch(text: &str) -> Option<i64> {
    let value: f64 = text.trim().parse().ok()?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let ms = if value < 1e11 {
        value * 1e3
    } else if value < 1e14 {
        value
    } else if value < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    Some(ms as i64)
}

/// A date, or a Unix epoch number, whichever the text is.
pub(crate) fn parse_any(text: &str) -> Option<ParsedTime> {
    parse_datetime(text).or_else(|| {
        let t = text.trim();
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            parse_epoch(t).map(|ms| ParsedTime {
                ms,
                zone_missing: false,
            })
        } else {
            None
        }
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How far ahead of the receive time a year-less time may be (clock skew between the
/// sender and Vedette) before it is taken to be from the previous year.
const FUTURE_TOLERANCE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Parses a BSD syslog time (`Feb 12 14:10:21`, day padded with a space or not), which
/// has no year and no zone. The year is inferred from `reference_ms` (the receive time),
/// never from the clock alone: the latest year that puts the time no more than 7 days
/// after the reference. Around New Year that is the closest year either way (`Dec 31`
/// received on Jan 1 is last year; `Jan 1` received on Dec 31 is next year); for an
/// old file it is the past year rather than a date months in the future. The zone is
/// taken as UTC.
/// Returns the time and the number of bytes of `text` it used.
pub(crate) fn parse_bsd(text: &str, reference_ms: i64) -> Option<(i64, usize)> {
    let bytes = text.as_bytes();
    if bytes.len() < 15 {
        return None;
    }
    let month = MONTHS.iter().position(|m| text.get(..3) == Some(*m))? as u32 + 1;
    if bytes[3] != b' ' {
        return None;
    }
    let day_text = text.get(4..6)?.trim_start();
    let day: u32 = day_text.parse().ok().filter(|d| *d >= 1)?;
    let clock = text.get(7..15)?;
    if bytes[6] != b' ' {
        return None;
    }
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    let (h, m, s): (u32, u32, u32) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    let mut used = 15;
    let mut millis = 0u32;
    // Optional fraction: `14:10:21.123`.
    if bytes.get(15) == Some(&b'.') {
        let fraction = bytes.get(16..).unwrap_or_default();
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        used += 1 + digits;
        // The first three digits, padded with zeros: milliseconds.
        millis = (0..3).fold(0, |ms, i| {
            let digit = fraction
                .get(i)
                .filter(|_| i < digits)
                .map_or(0, |d| d - b'0');
            ms * 10 + u32::from(digit)
        });
    }
    if h >= 24 || m >= 60 || s >= 60 {
        return None;
    }
    let clock_ms = i64::from(((h * 60 + m) * 60 + s) * 1000 + millis);
    // Plain calendar arithmetic, not a date library: this runs for every syslog line.
    // Years as far as the date library reaches, as before this was arithmetic: a receive
    // time past them gives no time.
    let year = Some(civil_year(reference_ms.div_euclid(DAY_MS))).filter(|y| YEARS.contains(y))?;
    // Candidates latest first; Feb 29 exists only in leap years, hence the range.
    let best = [year + 1, year, year - 1, year - 2, year - 3, year - 4]
        .into_iter()
        .filter(|y| YEARS.contains(y) && day <= days_in_month(*y, month))
        .filter_map(|y| {
            days_from_civil(y, month, day)
                .checked_mul(DAY_MS)?
                .checked_add(clock_ms)
        })
        .find(|ms| *ms <= reference_ms.saturating_add(FUTURE_TOLERANCE_MS))?;
    Some((best, used))
}

/// The years `parse_bsd` gives times in: those of the date library it used before
/// (`chrono::NaiveDate::MIN` to `MAX`).
const YEARS: std::ops::RangeInclusive<i64> = -262_143..=262_142;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Whether `year` (proleptic Gregorian) is a leap year.
fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`; 0 for a month out of range.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to `year-month-day` (a valid date), by the era arithmetic of
/// the proleptic Gregorian calendar (400-year cycles of 146,097 days).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of the day `days` after 1970-01-01.
fn civil_year(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    // Months counted from March: January and February belong to the next year.
    year_of_era + era * 400 + i64::from(month_index >= 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Utc};

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .map(|d| d.timestamp_millis())
            .unwrap_or(-1)
    }

    #[test]
    fn iso_forms() {
        let z = parse_datetime("2025-12-25T14:30:27.369114Z");
        assert_eq!(
            z,
            Some(ParsedTime {
                ms: ms("2025-12-25T14:30:27.369Z"),
                zone_missing: false
            })
        );
        let naive = parse_datetime("2020-10-18 07:50:06.220");
        assert_eq!(
            naive,
            Some(ParsedTime {
                ms: ms("2020-10-18T07:50:06.220Z"),
                zone_missing: true
            })
        );
        let offset = parse_datetime("2023-07-06T08:11:40+02:00").map(|p| p.ms);
        assert_eq!(offset, Some(ms("2023-07-06T06:11:40Z")));
        let slash = parse_datetime("2023/07/06 08:11:40").map(|p| p.ms);
        assert_eq!(slash, Some(ms("2023-07-06T08:11:40Z")));
        let compact_offset = parse_datetime("2023-07-06T08:11:40.5+0000").map(|p| p.ms);
        assert_eq!(compact_offset, Some(ms("2023-07-06T08:11:40.5Z")));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime("2023-13-45 99:99:99"), None);
    }

    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        for text in [
            "2025-12-25T14:30:27.369114Z",
            "2020-10-18 07:50:06.220",
            "2023-07-06T08:11:40+02:00",
            "2023/07/06 08:11:40",
            "2023-07-06T08:11:40.5+0000",
            "2022-07-10T23:50:05.533101+0000",
            "2016-04-01T16:44:58Z",
            "2024-02-29 23:59:59.999 UTC",
            "2021-11-19T16:52:33.833733500Z",
        ] {
            let fast = parse_iso_fast(text);
            assert!(fast.is_some(), "{text}");
            let mut general = None;
            if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
                general = Some(dt.timestamp_millis());
            }
            if general.is_none() {
                let zulu = text.strip_suffix('Z').or_else(|| text.strip_suffix(" UTC"));
                general = zulu
                    .and_then(parse_naive)
                    .map(|n| n.and_utc().timestamp_millis());
            }
            if general.is_none() {
                general = ZONED_FORMATS
                    .iter()
                    .find_map(|f| DateTime::parse_from_str(text, f).ok())
                    .map(|d| d.timestamp_millis());
            }
            if general.is_none() {
                general = parse_naive(text).map(|n| n.and_utc().timestamp_millis());
            }
            assert_eq!(fast.map(|f| f.ms), general, "{text}");
        }
        for bad in [
            "2023-13-01 00:00:00",
            "2023-02-30T00:00:00Z",
            "2023-01-01T25:00:00",
            "2023-01-01T00:00:00+2",
            "2023-01-01T00:00:00.",
        ] {
            assert_eq!(parse_iso_fast(bad), None, "{bad}");
        }
    }

    #[test]
    fn epochs_by_magnitude() {
        assert_eq!(parse_epoch("1459529098"), Some(1_459_529_098_000));
        assert_eq!(parse_epoch("1459529098958"), Some(1_459_529_098_958));
        assert_eq!(parse_epoch("1459529098.958"), Some(1_459_529_098_958));
        assert_eq!(parse_epoch("1728938800841267391"), Some(1_728_938_800_841));
        assert_eq!(parse_epoch("-5"), None);
        assert_eq!(parse_epoch("nan"), None);
    }

    #[test]
    fn calendar_arithmetic_agrees_with_chrono() {
        let mut day = NaiveDate::from_ymd_opt(-1200, 1, 1).unwrap_or_default();
        let end = NaiveDate::from_ymd_opt(2800, 12, 31).unwrap_or_default();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        while day <= end {
            let days = (day - epoch).num_days();
            let (y, m, d) = (i64::from(day.year()), day.month(), day.day());
            assert_eq!(days_from_civil(y, m, d), days, "{day}");
            assert_eq!(civil_year(days), y, "{day}");
            let last = NaiveDate::from_ymd_opt(day.year(), m, 1)
                .and_then(|f| f.checked_add_months(chrono::Months::new(1)))
                .and_then(|n| n.pred_opt())
                .map_or(0, |l| l.day());
            assert_eq!(days_in_month(y, m), last, "{day}");
            day = day + chrono::Days::new(13);
        }
        assert_eq!(days_in_month(2026, 13), 0);
    }

    #[test]
    fn bsd_times_are_those_chrono_gives() {
        // The arithmetic above against the library's answer, across a range of
        // receive times and dates, Feb 29 included.
        for reference in [
            "1971-01-03T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2024-12-31T23:59:59Z",
            "2025-01-01T00:00:01Z",
            "2026-12-07T04:00:00Z",
            "2100-03-01T00:00:00Z",
        ] {
            let reference = ms(reference);
            for (month, name) in MONTHS.iter().enumerate() {
                for day in [1, 9, 28, 29, 30, 31] {
                    let text = format!("{name} {day:>2} 23:59:58.5 host");
                    let year = Utc
                        .timestamp_millis_opt(reference)
                        .single()
                        .map_or(0, |r| r.year());
                    let expected = [year + 1, year, year - 1, year - 2, year - 3, year - 4]
                        .into_iter()
                        .filter_map(|y| {
                            NaiveDate::from_ymd_opt(y, month as u32 + 1, day)?
                                .and_hms_milli_opt(23, 59, 58, 500)
                                .map(|n| n.and_utc().timestamp_millis())
                        })
                        .find(|t| *t <= reference + FUTURE_TOLERANCE_MS);
                    assert_eq!(
                        parse_bsd(&text, reference).map(|(t, _)| t),
                        expected,
                        "{text} at {reference}"
                    );
                }
            }
        }
        for (fraction, millis, used) in [
            (".", 0, 16),
            (".5", 500, 17),
            (".25", 250, 18),
            (".123", 123, 19),
            (".123456", 123, 22),
        ] {
            let text = format!("Jan  1 00:00:00{fraction} h");
            assert_eq!(parse_bsd(&text, 1000), Some((millis, used)), "{text}");
        }
        assert_eq!(parse_bsd("Feb 12 24:00:00 h", 0), None);
        assert_eq!(parse_bsd("Feb 12 23:60:00 h", 0), None);
        assert_eq!(parse_bsd("Feb 12 23:00:60 h", 0), None);
        assert_eq!(parse_bsd("Feb 12 23:00:00 h", i64::MAX), None);
        assert_eq!(parse_bsd("Feb  0 23:00:00 h", 0), None);
        assert_eq!(parse_bsd("Feb 00 23:00:00 h", 0), None);
        assert_eq!(
            (NaiveDate::MIN.year(), NaiveDate::MAX.year()),
            (*YEARS.start() as i32, *YEARS.end() as i32)
        );
        // At the edge of the range, a year past it is no candidate.
        let last_day = NaiveDate::MAX
            .and_hms_opt(0, 0, 0)
            .map_or(0, |d| d.and_utc().timestamp_millis());
        assert_eq!(
            parse_bsd("Dec 31 00:00:00 h", last_day).map(|(t, _)| t),
            Some(last_day)
        );
        assert_eq!(parse_bsd("Feb 12 23:00:00 h", i64::MIN), None);
    }

    #[test]
    fn bsd_year_is_the_closest_one() {
        // Received on 2027-01-01 00:00:05 UTC: "Dec 31 23:59:59" is from 2026.
        let reference = ms("2027-01-01T00:00:05Z");
        let (t, used) = parse_bsd("Dec 31 23:59:59 host app: x", reference).unwrap_or_default();
        assert_eq!(t, ms("2026-12-31T23:59:59Z"));
        assert_eq!(used, 15);
        // Received on 2026-12-31: "Jan  1 00:00:01" is the next year (clock skew).
        let reference = ms("2026-12-31T23:59:58Z");
        let (t, _) = parse_bsd("Jan  1 00:00:01 host", reference).unwrap_or_default();
        assert_eq!(t, ms("2027-01-01T00:00:01Z"));
        let (t, used) =
            parse_bsd("Feb 12 14:10:21.250 h", ms("2026-03-01T00:00:00Z")).unwrap_or_default();
        assert_eq!((t, used), (ms("2026-02-12T14:10:21.250Z"), 19));
        // Received in November: a February time is from this February, not next.
        let (t, _) = parse_bsd("Feb 12 14:10:21 h", ms("2026-11-27T12:00:00Z")).unwrap_or_default();
        assert_eq!(t, ms("2026-02-12T14:10:21Z"));
        // Feb 29 goes back to the last leap year.
        let (t, _) = parse_bsd("Feb 29 00:00:00 h", ms("2026-11-27T12:00:00Z")).unwrap_or_default();
        assert_eq!(t, ms("2024-02-29T00:00:00Z"));
        assert_eq!(parse_bsd("Foo 12 14:10:21 h", reference), None);
        assert_eq!(parse_bsd("Feb 30 14:10:21 h", reference), None);
    }
}
