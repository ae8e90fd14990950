//! Errors of opening and sealing cookies. Display strings follow lua-resty-session 4.x's
//! messages (`session.lua` `open()`, `save()`, `calculate_cookie_chunks()`) where it has one.

use thiserror::Error;

/// Why a cookie could not be opened. Every variant means "no valid session".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No cookie with the session's name was sent.
    #[error("missing session cookie")]
    MissingCookie,
    /// The value is shorter than the 110-character header.
    #[error("invalid session header")]
    InvalidHeader,
    /// The header is not valid unpadded base64url.
    #[error("unable to base64url decode session header")]
    HeaderEncoding,
    /// Header byte 0 is not 1.
    #[error("invalid session cookie type")]
    InvalidType,
    /// The STORAGE flag does not match the configured storage (cookie vs server).
    #[error("invalid session flags")]
    InvalidFlags,
    /// The session is older than 2^32-1 seconds.
    #[error("session lifetime exceeded")]
    LifetimeExceeded,
    /// `now - C > absolute_timeout`.
    #[error("session absolute timeout exceeded")]
    AbsoluteTimeout,
    /// Remember cookie: `now - C > remember_absolute_timeout`.
    #[error("session remember absolute timeout exceeded")]
    RememberAbsoluteTimeout,
    /// `now - C - R > rolling_timeout`.
    #[error("session rolling timeout exceeded")]
    RollingTimeout,
    /// Remember cookie: `now - C - R > remember_rolling_timeout`.
    #[error("session remember rolling timeout exceeded")]
    RememberRollingTimeout,
    /// A remember cookie carries a non-zero idling offset.
    #[error("invalid session idling offset")]
    InvalidIdlingOffset,
    /// `now - C - R - I > idling_timeout`.
    #[error("session idling timeout exceeded")]
    IdlingTimeout,
    /// The header MAC (including any bound ip/scheme/user-agent) does not match.
    #[error("invalid session message authentication code")]
    InvalidMac,
    /// The data-size field implies more than 9 chunk cookies.
    #[error("cookie size limit exceeded")]
    CookieSizeLimit,
    /// A chunk cookie `name2`..`name9` that the data size calls for was not sent.
    #[error("missing session cookie chunk")]
    MissingChunk,
    /// Server-side storage: no stored record for the session id.
    #[error("unable to load session")]
    MissingStoredData,
    /// Server-side storage: the stored record is not the JSON array lua-resty-session writes.
    #[error("unable to json decode session")]
    InvalidStoredData,
    /// The payload's length differs from the header's data-size field.
    #[error("invalid session payload")]
    InvalidPayload,
    /// The payload is not valid unpadded base64url.
    #[error("unable to base64url decode session data")]
    PayloadEncoding,
    /// AES-256-GCM authentication of the payload failed.
    #[error("unable to decrypt session data")]
    DecryptFailed,
    /// The DEFLATE flag is set but the plaintext does not inflate (or inflates too large).
    #[error("unable to inflate session data")]
    InflateFailed,
    /// The plaintext is not a JSON array of `[data, audience, subject]` triples.
    #[error("unable to json decode session data")]
    InvalidJson,
}

/// Why a cookie could not be sealed or laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The value needs more than 9 cookies of 4096 bytes.
    #[error("cookie size limit exceeded")]
    CookieSizeLimit,
    /// The base64url ciphertext does not fit the 3-byte data-size field.
    #[error("session maximum data size exceeded")]
    DataSizeExceeded,
    /// Renewal: `now - C` does not fit the 4-byte rolling offset.
    #[error("session maximum rolling offset exceeded")]
    RollingOffsetExceeded,
    /// The creation time does not fit the 5-byte field.
    #[error("session maximum creation time exceeded")]
    CreationTimeExceeded,
    /// The session data could not be serialised as JSON.
    #[error("unable to json encode session data")]
    Json,
    /// A cookie value to lay out is not ASCII (sealed values always are).
    #[error("invalid session cookie value")]
    InvalidValue,
}
