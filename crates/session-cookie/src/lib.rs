//! Byte-compatible lua-resty-session 4.x session cookies, the format Kong's `session` plugin
//! issues and accepts.
//!
//! This crate is pure and synchronous: it never reads a clock (every call takes `now` as Unix
//! seconds), never does I/O, and draws randomness only for a new session id, from the
//! caller's RNG or the OS one. The pieces:
//!
//! - [`Keys`]: built once from the shared secret; caches IKM = SHA-256(secret) and the
//!   HKDF-extracted PRK, so each cookie costs only HKDF-Expand, AES-256-GCM and HMAC-SHA256.
//! - [`Header`]: the 82-byte (110 base64url characters) cookie header, parsed and encoded.
//! - [`seal`] / [`seal_with_rng`]: encrypt [`SessionData`] into a new cookie value (and, for
//!   server-side storage, the ciphertext to store under [`Header::storage_key`]).
//! - [`open`], or [`verify`] then [`decrypt`]: check the header (type, flags, timeouts, MAC,
//!   binding) and decrypt the payload, with errors worded like lua-resty-session's.
//! - [`Header::refresh_action`], [`touch`]: what `session:refresh()` would do, and the touched
//!   cookie (same sid and ciphertext, new idling offset and MAC).
//! - [`chunk`]: splitting values over `name`, `name2`..`name9` and joining them back.
//! - [`CookieAttributes`] / [`CookieFlags`]: `Set-Cookie` lines in lua-resty-session's
//!   attribute order, including remember (`Expires`/`Max-Age`) and deletion lines.
//!
//! The format and the semantics are described in `shared/reference/kong-session.md`
//! (sections 1.2-1.11 and 2).

mod codec;
mod error;
mod header;
mod keys;
mod payload;
mod set_cookie;

pub mod chunk;

#[cfg(test)]
mod tests;

pub use codec::{
    Bind, BindValues, CookieKind, OpenOptions, Opened, SealOptions, Sealed, Storage, StorageRecord, Touched,
    decode_storage_record, decrypt, encode_storage_record, open, seal, seal_with_rng, touch, verify,
};
pub use error::{OpenError, SealError};
pub use header::{Flags, Header, RefreshAction, Remaining, Timeouts, lua_number};
pub use keys::{Keys, RememberSafety};
pub use payload::{SessionData, SessionEntry};
pub use set_cookie::{CookieAttributes, CookieFlags, RememberExpiry, SameSite, http_date};

/// Size of the decoded cookie header in bytes.
pub const HEADER_SIZE: usize = 82;
/// Size of the base64url (unpadded) encoded cookie header in characters.
pub const HEADER_ENCODED_SIZE: usize = 110;
/// The only cookie type lua-resty-session 4.x writes (header byte 0).
pub const COOKIE_TYPE: u8 = 1;
/// Largest creation time the 5-byte field holds (2^40 - 1).
pub const MAX_CREATION_TIME: u64 = (1 << 40) - 1;
/// Largest rolling offset the 4-byte field holds; also the largest age of any session.
pub const MAX_ROLLING_OFFSET: u64 = u32::MAX as u64;
/// Largest idling offset the 3-byte field holds (about 194 days).
pub const MAX_IDLING_OFFSET: u32 = (1 << 24) - 1;
/// Largest data size (base64url characters of the ciphertext) the 3-byte field holds.
pub const MAX_DATA_SIZE: u32 = (1 << 24) - 1;
/// lua-resty-session's default `touch_threshold` (seconds); Kong does not expose it.
pub const DEFAULT_TOUCH_THRESHOLD: u64 = 60;
/// lua-resty-session's default `compression_threshold` (bytes of JSON); Kong does not expose it.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;
/// Cap on a remember cookie's `Max-Age` (400 days, RFC 6265bis).
pub const MAX_TTL: u64 = 34_560_000;
/// Cap on the inflated size of a deflated payload (a guard; lua-resty-session has none).
pub const MAX_INFLATED_SIZE: usize = 16 << 20;
