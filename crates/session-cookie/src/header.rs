//! The 82-byte cookie header, its flags, and the timeout arithmetic on its times
//! (lua-resty-session `session.lua` header constants, `get_property()`, `refresh()`).
//!
//! ```text
//! offset size field
//!      0    1 type (1)
//!      1    2 flags, LE u16
//!      3   32 session id
//!     35    5 creation time C, LE
//!     40    4 rolling offset R, LE
//!     44    3 data size, LE (base64url characters of the ciphertext)
//!     47   16 AES-256-GCM tag
//!     63    3 idling offset I, LE
//!     66   16 HMAC-SHA256, first 16 bytes
//! ```

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use base64::Engine as _;

use crate::codec::B64;
use crate::{COOKIE_TYPE, HEADER_ENCODED_SIZE, HEADER_SIZE, OpenError};

/// Bytes covered by the AES-GCM additional data: type, flags, sid, C, R, data size.
pub(crate) const AAD_SIZE: usize = 47;
/// Bytes covered by the MAC: everything before the MAC itself.
pub(crate) const MAC_INPUT_SIZE: usize = 66;

/// The header's 16 flag bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// The payload lives in server-side storage, not in the cookie.
    pub const STORAGE: Self = Self(0x0001);
    /// `set_remember(false)` was called; the choice sticks across renewals.
    pub const FORGET: Self = Self(0x0002);
    /// The plaintext was raw-deflated before encryption.
    pub const DEFLATE: Self = Self(0x0010);
    /// The MAC covers the client IP.
    pub const BIND_IP: Self = Self(0x0100);
    /// The MAC covers the request scheme.
    pub const BIND_SCHEME: Self = Self(0x0200);
    /// The MAC covers the User-Agent header.
    pub const BIND_USER_AGENT: Self = Self(0x0400);
    /// All three bind flags.
    pub const BIND_ALL: Self = Self(0x0700);

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// These flags with `other`'s bits set or cleared.
    #[must_use]
    pub const fn with(self, other: Self, on: bool) -> Self {
        if on { Self(self.0 | other.0) } else { Self(self.0 & !other.0) }
    }
}

impl BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Flags, &str); 6] = [
            (Flags::STORAGE, "STORAGE"),
            (Flags::FORGET, "FORGET"),
            (Flags::DEFLATE, "DEFLATE"),
            (Flags::BIND_IP, "BIND_IP"),
            (Flags::BIND_SCHEME, "BIND_SCHEME"),
            (Flags::BIND_USER_AGENT, "BIND_USER_AGENT"),
        ];
        write!(f, "Flags({:#06x}", self.0)?;
        let mut sep = ": ";
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        f.write_str(")")
    }
}

/// A decoded cookie header. Parsing and encoding are lossless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Flag bits.
    pub flags: Flags,
    /// The 32 random bytes naming this session (new on every save/renewal).
    pub sid: [u8; 32],
    /// C: Unix seconds of the original login (kept across renewals); < 2^40.
    pub creation_time: u64,
    /// R: seconds from C to the latest renewal.
    pub rolling_offset: u32,
    /// Length in base64url characters of the ciphertext; < 2^24.
    pub data_size: u32,
    /// AES-256-GCM tag of the payload.
    pub tag: [u8; 16],
    /// I: seconds from C + R to the latest touch; < 2^24.
    pub idling_offset: u32,
    /// First 16 bytes of the header's HMAC-SHA256.
    pub mac: [u8; 16],
}

impl Header {
    /// Parses 82 header bytes; fails only on a type byte other than 1.
    pub fn from_bytes(bytes: &[u8; HEADER_SIZE]) -> Result<Self, OpenError> {
        if bytes[0] != COOKIE_TYPE {
            return Err(OpenError::InvalidType);
        }
        let mut sid = [0u8; 32];
        sid.copy_from_slice(&bytes[3..35]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&bytes[47..63]);
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&bytes[66..82]);
        Ok(Self {
            flags: Flags(u16::from_le_bytes([bytes[1], bytes[2]])),
            sid,
            creation_time: le(&bytes[35..40]),
            rolling_offset: le(&bytes[40..44]) as u32,
            data_size: le(&bytes[44..47]) as u32,
            tag,
            idling_offset: le(&bytes[63..66]) as u32,
            mac,
        })
    }

    /// The 82 header bytes. Fields wider than their slot (C >= 2^40, data size or I >= 2^24)
    /// are truncated to the slot; [`crate::seal`] and [`crate::touch`] never produce such values.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0] = COOKIE_TYPE;
        b[1..3].copy_from_slice(&self.flags.0.to_le_bytes());
        b[3..35].copy_from_slice(&self.sid);
        b[35..40].copy_from_slice(&self.creation_time.to_le_bytes()[..5]);
        b[40..44].copy_from_slice(&self.rolling_offset.to_le_bytes());
        b[44..47].copy_from_slice(&self.data_size.to_le_bytes()[..3]);
        b[47..63].copy_from_slice(&self.tag);
        b[63..66].copy_from_slice(&self.idling_offset.to_le_bytes()[..3]);
        b[66..82].copy_from_slice(&self.mac);
        b
    }

    /// Decodes the header from the first 110 characters of a cookie value (the rest, if any,
    /// is ignored).
    pub fn decode(cookie_value: &str) -> Result<Self, OpenError> {
        Self::from_bytes(&decode_raw(cookie_value)?)
    }

    /// The 110-character base64url encoding.
    pub fn encode(&self) -> String {
        B64.encode(self.to_bytes())
    }

    /// base64url(sid), 43 characters: lua-resty-session's `Session-Id` header value and its
    /// (and Kong's) server-side storage key.
    pub fn storage_key(&self) -> String {
        B64.encode(self.sid)
    }

    /// Seconds since creation: `now - C` (negative if the clock is behind C).
    pub fn absolute_elapsed(&self, now: u64) -> i64 {
        now as i64 - self.creation_time as i64
    }

    /// Seconds since the latest renewal: `now - C - R`.
    pub fn rolling_elapsed(&self, now: u64) -> i64 {
        self.absolute_elapsed(now) - i64::from(self.rolling_offset)
    }

    /// Seconds since the latest touch: `now - C - R - I`.
    pub fn idling_elapsed(&self, now: u64) -> i64 {
        self.rolling_elapsed(now) - i64::from(self.idling_offset)
    }

    /// Remaining seconds of each enabled timeout (lua-resty-session `get_property()`).
    /// Timeouts are Kong numbers, so a remaining time may have a fraction (`0.19 - 0`).
    pub fn remaining(&self, timeouts: &Timeouts, now: u64) -> Remaining {
        let left = |timeout: f64, elapsed: i64| (timeout != 0.0).then_some(timeout - elapsed as f64);
        Remaining {
            idling: left(timeouts.idling, self.idling_elapsed(now)),
            rolling: left(timeouts.rolling, self.rolling_elapsed(now)),
            absolute: left(timeouts.absolute, self.absolute_elapsed(now)),
        }
    }

    /// What lua-resty-session's `refresh()` does with this (already opened) session cookie:
    /// renew once more than `ceil(0.75 * rolling)` seconds passed since the latest renewal,
    /// else touch once more than `touch_threshold` seconds passed since the latest touch
    /// (only with an idling timeout). Remember cookies are never refreshed this way.
    pub fn refresh_action(&self, timeouts: &Timeouts, touch_threshold: u64, now: u64) -> RefreshAction {
        if timeouts.rolling == 0.0 && timeouts.idling == 0.0 {
            return RefreshAction::None;
        }
        let rolling_elapsed = self.rolling_elapsed(now);
        // ceil(0.75 * rolling); lua-resty-session names it `floor` but binds math.ceil.
        if timeouts.rolling > 0.0 && rolling_elapsed as f64 > (timeouts.rolling * 0.75).ceil() {
            return RefreshAction::Renew;
        }
        if timeouts.idling > 0.0 && rolling_elapsed - i64::from(self.idling_offset) > touch_threshold as i64 {
            return RefreshAction::Touch;
        }
        RefreshAction::None
    }
}

/// Decodes the 82 header bytes from the first 110 characters of a cookie value.
pub(crate) fn decode_raw(cookie_value: &str) -> Result<[u8; HEADER_SIZE], OpenError> {
    let encoded = cookie_value.as_bytes().get(..HEADER_ENCODED_SIZE).ok_or(OpenError::InvalidHeader)?;
    let mut out = [0u8; HEADER_SIZE];
    match B64.decode_slice(encoded, &mut out) {
        Ok(HEADER_SIZE) => Ok(out),
        _ => Err(OpenError::HeaderEncoding),
    }
}

fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// The three timeouts in seconds; 0 disables one (its check, and for idling/rolling also
/// touching/renewing). Kong's schema types them as numbers and lua-resty-session compares
/// whole elapsed seconds with them as they are (`elapsed > timeout`), so a fraction counts:
/// `0.19` is enabled and expires once one second has passed; it is not rounded to 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Maximum inactivity (`idling_timeout`); ignored for remember cookies.
    pub idling: f64,
    /// Maximum time since the latest renewal (`rolling_timeout`).
    pub rolling: f64,
    /// Maximum time since creation (`absolute_timeout`).
    pub absolute: f64,
}

impl Timeouts {
    /// Kong's and lua-resty-session's defaults for session cookies: 900 / 3600 / 86400.
    pub const SESSION_DEFAULT: Self = Self { idling: 900.0, rolling: 3600.0, absolute: 86_400.0 };
    /// Defaults for remember cookies: no idling, rolling 7 days, absolute 30 days.
    pub const REMEMBER_DEFAULT: Self = Self { idling: 0.0, rolling: 604_800.0, absolute: 2_592_000.0 };
    /// Every check disabled.
    pub const NONE: Self = Self { idling: 0.0, rolling: 0.0, absolute: 0.0 };
}

impl Eq for Timeouts {}

impl Default for Timeouts {
    fn default() -> Self {
        Self::SESSION_DEFAULT
    }
}

/// Remaining seconds of each enabled timeout; `None` where the timeout is 0. Fractional
/// when the timeout is; [`lua_number`] writes one as lua-resty-session's header does.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Remaining {
    /// `Session-Idling-Timeout`.
    pub idling: Option<f64>,
    /// `Session-Rolling-Timeout`.
    pub rolling: Option<f64>,
    /// `Session-Absolute-Timeout`.
    pub absolute: Option<f64>,
}

impl Remaining {
    /// `Session-Timeout`: the smallest of the enabled ones.
    pub fn timeout(&self) -> Option<f64> {
        [self.idling, self.rolling, self.absolute].into_iter().flatten().reduce(f64::min)
    }
}

/// A number as Lua's `tostring` writes it (`%.14g`): `900`, `0.19`, `-0.81`, `2.79`
/// (not `2.7899999999999996`). lua-resty-session hands the remaining times to
/// `ngx.req.set_header` as numbers, which formats them so.
pub fn lua_number(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if v == v.trunc() && v.abs() < 1e14 {
        return format!("{}", v as i64);
    }
    // 14 significant digits, then the shortest form of that.
    let exp = v.abs().log10().floor() as i32;
    let decimals = (13 - exp).clamp(0, 30) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s };
    if s == "-0" { "0".into() } else { s }
}

/// What `refresh()` should do with an opened session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshAction {
    /// Nothing: send no cookie.
    None,
    /// Re-issue the cookie with the same sid and ciphertext, new idling offset and MAC
    /// ([`crate::touch`]).
    Touch,
    /// Save anew: new sid, same creation time, new rolling offset ([`crate::seal`] with
    /// [`crate::SealOptions::renewing`]).
    Renew,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            flags: Flags::BIND_IP | Flags::DEFLATE,
            sid: core::array::from_fn(|i| i as u8),
            creation_time: (1 << 40) - 2,
            rolling_offset: 0xdead_beef,
            data_size: 0x00ab_cdef,
            tag: [0x5a; 16],
            idling_offset: 0x00fe_dcba,
            mac: [0xa5; 16],
        }
    }

    #[test]
    fn bytes_round_trip_and_layout() {
        let h = sample();
        let b = h.to_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..3], &[0x10, 0x01]);
        assert_eq!(&b[40..44], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(&b[44..47], &[0xef, 0xcd, 0xab]);
        assert_eq!(&b[63..66], &[0xba, 0xdc, 0xfe]);
        assert_eq!(Header::from_bytes(&b).unwrap(), h);
        let enc = h.encode();
        assert_eq!(enc.len(), HEADER_ENCODED_SIZE);
        assert_eq!(Header::decode(&enc).unwrap(), h);
        assert_eq!(h.storage_key().len(), 43);
    }

    #[test]
    fn decode_errors() {
        assert_eq!(Header::decode("AQAA"), Err(OpenError::InvalidHeader));
        let bad = "!".repeat(110);
        assert_eq!(Header::decode(&bad), Err(OpenError::HeaderEncoding));
        let mut b = sample().to_bytes();
        b[0] = 2;
        assert_eq!(Header::from_bytes(&b), Err(OpenError::InvalidType));
    }

    #[test]
    fn flags_debug_and_ops() {
        let f = Flags::STORAGE | Flags::BIND_USER_AGENT;
        assert_eq!(format!("{f:?}"), "Flags(0x0401: STORAGE | BIND_USER_AGENT)");
        assert!(f.intersects(Flags::BIND_ALL));
        assert!(!f.contains(Flags::BIND_ALL));
        assert_eq!(f.with(Flags::STORAGE, false), Flags::BIND_USER_AGENT);
    }

    #[test]
    fn remaining_and_timeout() {
        let h = Header { creation_time: 1000, rolling_offset: 100, idling_offset: 10, ..sample() };
        let t = Timeouts { idling: 900.0, rolling: 3600.0, absolute: 86_400.0 };
        let r = h.remaining(&t, 1200);
        assert_eq!(
            r,
            Remaining { idling: Some(900.0 - 90.0), rolling: Some(3600.0 - 100.0), absolute: Some(86_400.0 - 200.0) }
        );
        assert_eq!(r.timeout(), Some(810.0));
        let r = h.remaining(&Timeouts { idling: 0.0, ..t }, 1200);
        assert_eq!(r.idling, None);
        assert_eq!(r.timeout(), Some(3500.0));
        assert_eq!(h.remaining(&Timeouts::NONE, 1200).timeout(), None);
        // fractions stay, and are written as Lua writes numbers
        let r = h.remaining(&Timeouts { idling: 0.19, rolling: 8.85, absolute: 3.79 }, 1110);
        assert_eq!(r.idling.map(lua_number).as_deref(), Some("0.19"));
        assert_eq!(r.rolling.map(lua_number).as_deref(), Some("-1.15"));
        assert_eq!(r.absolute.map(lua_number).as_deref(), Some("-106.21"));
        assert_eq!(r.timeout().map(lua_number).as_deref(), Some("-106.21"));
        assert_eq!(lua_number(900.0), "900");
        assert_eq!(lua_number(3.79 - 1.0), "2.79");
        assert_eq!(lua_number(-0.81), "-0.81");
    }

    #[test]
    fn refresh_thresholds() {
        let h = Header { creation_time: 1000, rolling_offset: 0, idling_offset: 0, ..sample() };
        let t = Timeouts { idling: 900.0, rolling: 3600.0, absolute: 0.0 };
        // ceil(0.75 * 3600) = 2700: strictly more renews.
        assert_eq!(h.refresh_action(&t, 60, 1000 + 2700), RefreshAction::Touch);
        assert_eq!(h.refresh_action(&t, 60, 1000 + 2701), RefreshAction::Renew);
        // touch threshold 60, strict.
        assert_eq!(h.refresh_action(&t, 60, 1060), RefreshAction::None);
        assert_eq!(h.refresh_action(&t, 60, 1061), RefreshAction::Touch);
        // ceil, not floor: rolling 10 -> threshold 8.
        let t10 = Timeouts { idling: 0.0, rolling: 10.0, absolute: 0.0 };
        assert_eq!(h.refresh_action(&t10, 60, 1008), RefreshAction::None);
        assert_eq!(h.refresh_action(&t10, 60, 1009), RefreshAction::Renew);
        // a fractional rolling timeout: ceil(0.75 * 8.85) = ceil(6.6375) = 7.
        let t885 = Timeouts { idling: 0.0, rolling: 8.85, absolute: 0.0 };
        assert_eq!(h.refresh_action(&t885, 60, 1007), RefreshAction::None);
        assert_eq!(h.refresh_action(&t885, 60, 1008), RefreshAction::Renew);
        // no idling timeout: never touch.
        assert_eq!(h.refresh_action(&Timeouts { idling: 0.0, ..t }, 60, 1061), RefreshAction::None);
        assert_eq!(h.refresh_action(&Timeouts::NONE, 60, 99_999), RefreshAction::None);
        // idling offset counts for touch.
        let touched = Header { idling_offset: 50, ..h };
        assert_eq!(touched.refresh_action(&t, 60, 1110), RefreshAction::None);
        assert_eq!(touched.refresh_action(&t, 60, 1111), RefreshAction::Touch);
    }
}
