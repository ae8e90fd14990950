//! Instants as whole Unix seconds, rendered as RFC 3339 in UTC.
//!
//! Seconds are the resolution every session rule in Tessera is expressed in (durations,
//! idle timeouts, expiry), so a finer clock would only add rounding questions.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_unix(secs: i64) -> Self {
        Self(secs)
    }
    pub fn unix(self) -> i64 {
        self.0
    }
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }
    /// Seconds from `self` until `later`, never negative.
    pub fn secs_until(self, later: Timestamp) -> i64 {
        (later.0 - self.0).max(0)
    }
    /// The UTC hour of day, 0–23.
    pub fn hour_utc(self) -> u8 {
        (self.0.rem_euclid(86_400) / 3_600) as u8
    }
    pub fn to_rfc3339(self) -> String {
        self.rfc3339().as_str().to_owned()
    }
    /// The RFC 3339 text (`2026-11-22T13:45:10Z`) on the stack: what every answer's times
    /// are made of, written without the general formatter's allocations. A time outside
    /// years 0000–9999, which RFC 3339 cannot write, is its Unix seconds.
    pub fn rfc3339(self) -> Rfc3339Text {
        let mut text = Rfc3339Text { buf: [0; 20], len: 0 };
        let date = OffsetDateTime::from_unix_timestamp(self.0).ok().filter(|t| (0..=9999).contains(&t.year()));
        let Some(t) = date else {
            let mut w = &mut text.buf[..];
            // An i64 is at most 20 characters: the write cannot run out of room.
            let _ = std::io::Write::write_fmt(&mut w, format_args!("{}", self.0));
            text.len = (20 - w.len()) as u8;
            return text;
        };
        let b = &mut text.buf;
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut v = value;
            for i in (0..digits).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, t.year() as u32, 4);
        put(5, u8::from(t.month()).into(), 2);
        put(8, t.day().into(), 2);
        put(11, t.hour().into(), 2);
        put(14, t.minute().into(), 2);
        put(17, t.second().into(), 2);
        for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'Z')] {
            b[at] = c;
        }
        text.len = 20;
        text
    }
    /// Parses RFC 3339 (any offset); fractional seconds are dropped.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| Self(t.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc3339().as_str())
    }
}

/// [`Timestamp::rfc3339`]'s text.
#[derive(Clone, Copy)]
pub struct Rfc3339Text {
    buf: [u8; 20],
    len: u8,
}

impl Rfc3339Text {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-', ':', 'T' and 'Z' are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes (ASCII digits, '-', ':', 'T' and 'Z'), for a writer that needs no
    /// `str`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_and_reads_hours() {
        let t = Timestamp::parse_rfc3339("2026-11-22T13:45:10+00:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T13:45:10Z");
        assert_eq!(t.hour_utc(), 13);
        let shifted = Timestamp::parse_rfc3339("2026-11-22T15:45:10+02:00").unwrap();
        assert_eq!(shifted, t);
        assert_eq!(t.secs_until(t.plus_secs(30)), 30);
        assert_eq!(t.plus_secs(30).secs_until(t), 0);
    }

    /// The stack formatter writes exactly what the `time` crate's RFC 3339 formatter writes,
    /// at the edges of every field and of the years RFC 3339 can hold.
    #[test]
    fn formats_rfc3339_as_the_time_crate_does() {
        let general = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|d| d.format(&Rfc3339).ok())
                .unwrap_or_else(|| t.to_string())
        };
        let year_0 = -62_167_219_200;
        let end_of_9999 = 253_402_300_799;
        let mut cases = vec![0, -1, 1, 59, 60, 3_599, 86_399, 86_400, 951_782_400, 1_795_000_000, year_0, end_of_9999];
        cases.extend([year_0 - 1, end_of_9999 + 1, i64::MIN, i64::MAX, -9_999_999_999_999]);
        // Every day boundary over four years (a leap year among them), and odd seconds.
        cases.extend((0..4 * 366).map(|d| 1_700_000_000 + d * 86_400 + d * 37 % 86_400));
        for t in cases {
            assert_eq!(Timestamp(t).rfc3339().as_str(), general(t), "at {t}");
            assert_eq!(Timestamp(t).to_string(), general(t), "at {t}");
        }
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(i64::MIN).to_rfc3339(), "-9223372036854775808");
    }
}
