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
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
    /// Parses RFC 3339 (any offset); fractional seconds are dropped.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| Self(t.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
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
}
