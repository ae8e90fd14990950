//! Sealing, verifying, decrypting and touching cookies (lua-resty-session `save()`, `open()`,
//! `touch()`, `bind()`, `calculate_mac()`; reference sections 1.2, 1.3, 1.5, 2.3, 2.4, 2.6).

use aes_gcm::aead::AeadInPlace as _;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes256Gcm, KeyInit as _};
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use rand::{CryptoRng, RngCore};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::header::{AAD_SIZE, MAC_INPUT_SIZE, decode_raw};
use crate::payload::{decode_plaintext, encode_plaintext};
use crate::{
    DEFAULT_COMPRESSION_THRESHOLD, Flags, HEADER_ENCODED_SIZE, HEADER_SIZE, Header, Keys, MAX_CREATION_TIME,
    MAX_DATA_SIZE, MAX_IDLING_OFFSET, MAX_ROLLING_OFFSET, OpenError, RememberSafety, SealError, SessionData,
    SessionEntry, Timeouts,
};

/// Unpadded base64url with canonical (zero) trailing bits, as `ngx.base64` writes it.
pub(crate) const B64: GeneralPurpose = URL_SAFE_NO_PAD;

/// Where the encrypted payload lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Storage {
    /// In the cookie, after the header (Kong `storage = "cookie"`).
    #[default]
    Cookie,
    /// Server-side under [`Header::storage_key`]; the cookie is the 110-character header only
    /// (Kong `storage = "kong"`). Sets the STORAGE flag.
    Server,
}

/// Which of the two cookies: the session cookie or the persistent remember cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CookieKind {
    /// The session cookie: HKDF data key, all three timeouts.
    #[default]
    Session,
    /// The remember cookie: data key per [`RememberSafety`], idling offset must be 0, only the
    /// rolling and absolute timeouts (pass the remember ones in [`OpenOptions::timeouts`]).
    Remember(RememberSafety),
}

impl CookieKind {
    fn safety(self) -> RememberSafety {
        match self {
            Self::Session => RememberSafety::None,
            Self::Remember(safety) => safety,
        }
    }
}

/// Which request properties a new session is bound to (Kong 3.12 `bind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bind {
    /// `ip`: the client address.
    pub ip: bool,
    /// `scheme`: `http` or `https`.
    pub scheme: bool,
    /// `user-agent` (or `user_agent`): the User-Agent header.
    pub user_agent: bool,
}

impl Bind {
    /// Not bound.
    pub const NONE: Self = Self { ip: false, scheme: false, user_agent: false };
    /// Bound to all three.
    pub const ALL: Self = Self { ip: true, scheme: true, user_agent: true };

    /// Parses config names `ip`, `scheme`, `user-agent` / `user_agent`; returns the first
    /// unknown name as the error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut bind = Self::NONE;
        for name in names {
            match name {
                "ip" => bind.ip = true,
                "scheme" => bind.scheme = true,
                "user-agent" | "user_agent" => bind.user_agent = true,
                other => return Err(other),
            }
        }
        Ok(bind)
    }

    /// The header flags.
    pub const fn flags(self) -> Flags {
        Flags::NONE
            .with(Flags::BIND_IP, self.ip)
            .with(Flags::BIND_SCHEME, self.scheme)
            .with(Flags::BIND_USER_AGENT, self.user_agent)
    }

    /// The binding a header's flags demand.
    pub const fn from_flags(flags: Flags) -> Self {
        Self {
            ip: flags.contains(Flags::BIND_IP),
            scheme: flags.contains(Flags::BIND_SCHEME),
            user_agent: flags.contains(Flags::BIND_USER_AGENT),
        }
    }
}

/// The current request's values for binding (`$remote_addr`, `$scheme`,
/// `$http_user_agent`); empty means absent. Only those whose flag the cookie carries count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BindValues<'a> {
    /// Client address, e.g. `127.0.0.1`.
    pub ip: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The User-Agent header.
    pub user_agent: &'a str,
}

/// How [`seal`] writes a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealOptions {
    /// Cookie or server-side payload.
    pub storage: Storage,
    /// Session or remember cookie (decides the data-key derivation).
    pub kind: CookieKind,
    /// Properties to bind the MAC to.
    pub bind: Bind,
    /// Set the FORGET flag.
    pub forget: bool,
    /// `None` for a new session (C = now, R = 0); `Some(C)` to renew one created at C
    /// (R = now - C).
    pub creation_time: Option<u64>,
    /// Deflate JSON longer than this many bytes if that makes it shorter; 0 never deflates.
    pub compression_threshold: usize,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self {
            storage: Storage::Cookie,
            kind: CookieKind::Session,
            bind: Bind::NONE,
            forget: false,
            creation_time: None,
            compression_threshold: DEFAULT_COMPRESSION_THRESHOLD,
        }
    }
}

impl SealOptions {
    /// These options set up to renew `previous`: keep its creation time, and keep FORGET if
    /// it was set (as lua-resty-session's `save()` does).
    #[must_use]
    pub fn renewing(mut self, previous: &Header) -> Self {
        self.creation_time = Some(previous.creation_time);
        self.forget |= previous.flags.contains(Flags::FORGET);
        self
    }
}

/// A freshly sealed cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The header written.
    pub header: Header,
    /// The whole cookie value: header, plus the ciphertext with cookie storage. Longer than
    /// 4096 bytes with its name? Lay it out with [`crate::chunk::split`].
    pub value: String,
    /// base64url(ciphertext); with server storage this is what to store (see
    /// [`Sealed::storage_record`]) under [`Header::storage_key`].
    pub ciphertext: String,
}

impl Sealed {
    /// base64url(sid): the server-side storage key.
    pub fn storage_key(&self) -> String {
        self.header.storage_key()
    }

    /// The stored value lua-resty-session and Kong write: `["<ciphertext>"]`.
    pub fn storage_record(&self) -> String {
        encode_storage_record(&self.ciphertext)
    }
}

/// How [`verify`] / [`open`] check a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OpenOptions {
    /// The configured storage; a cookie whose STORAGE flag disagrees is rejected.
    pub storage: Storage,
    /// Session or remember cookie.
    pub kind: CookieKind,
    /// The timeouts to enforce (for a remember cookie, the remember rolling/absolute ones).
    pub timeouts: Timeouts,
}

/// An opened, authenticated and decrypted cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The verified header.
    pub header: Header,
    /// Every audience's entry.
    pub data: SessionData,
}

impl Opened {
    /// The entry of `audience`, if the cookie has one (else lua-resty-session reports
    /// "missing session audience" and keeps the others for the next save).
    pub fn entry(&self, audience: &str) -> Option<&SessionEntry> {
        self.data.iter().find(|e| e.audience == audience)
    }
}

/// A touched cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The header with the new idling offset and MAC.
    pub header: Header,
    /// The new cookie value (new header, same payload).
    pub value: String,
}

/// A server-side storage record, `["<ciphertext>"]` or `["<ciphertext>", "<info>"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRecord {
    /// base64url(ciphertext).
    pub ciphertext: String,
    /// base64url(JSON) of lua-resty-session's `session.info` store, if any.
    pub info: Option<String>,
}

/// Seals `data` into a new cookie with a session id from the OS RNG. See [`seal_with_rng`].
pub fn seal(
    keys: &Keys,
    options: &SealOptions,
    data: &[SessionEntry],
    bind: &BindValues<'_>,
    now: u64,
) -> Result<Sealed, SealError> {
    seal_with_rng(keys, options, data, bind, now, &mut rand::rngs::OsRng)
}

/// Seals `data` into a new cookie (lua-resty-session `save()`): new random sid, C and R per
/// [`SealOptions::creation_time`], I = 0, plaintext JSON (deflated past the threshold),
/// AES-256-GCM with AAD = header[0..47], MAC over header[0..66] and the bound values.
pub fn seal_with_rng<R: RngCore + CryptoRng + ?Sized>(
    keys: &Keys,
    options: &SealOptions,
    data: &[SessionEntry],
    bind: &BindValues<'_>,
    now: u64,
    rng: &mut R,
) -> Result<Sealed, SealError> {
    let (creation_time, rolling_offset) = match options.creation_time {
        // A clock behind C (another node's skew) renews with R = 0 rather than failing.
        Some(c) => (c, now.saturating_sub(c)),
        None => (now, 0),
    };
    if rolling_offset > MAX_ROLLING_OFFSET {
        return Err(SealError::RollingOffsetExceeded);
    }
    if creation_time > MAX_CREATION_TIME {
        return Err(SealError::CreationTimeExceeded);
    }

    let mut flags = options.bind.flags();
    flags = flags.with(Flags::STORAGE, options.storage == Storage::Server);
    flags = flags.with(Flags::FORGET, options.forget);

    let (mut buf, deflated) = encode_plaintext(data, options.compression_threshold)?;
    flags = flags.with(Flags::DEFLATE, deflated);
    let data_size = base64::encoded_len(buf.len(), false).ok_or(SealError::DataSizeExceeded)?;
    if data_size > MAX_DATA_SIZE as usize {
        return Err(SealError::DataSizeExceeded);
    }

    let mut sid = [0u8; 32];
    rng.fill_bytes(&mut sid);
    let mut header = Header {
        flags,
        sid,
        creation_time,
        rolling_offset: rolling_offset as u32,
        data_size: data_size as u32,
        tag: [0; 16],
        idling_offset: 0,
        mac: [0; 16],
    };

    let (key, iv) = keys.aead_key_iv(&sid, options.kind.safety());
    let aad = header.to_bytes();
    let tag = Aes256Gcm::new(GenericArray::from_slice(&key))
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), &aad[..AAD_SIZE], &mut buf)
        .expect("AES-GCM accepts any plaintext below 64 GiB");
    header.tag.copy_from_slice(&tag);
    header.mac = compute_mac(keys, &header.to_bytes(), bind);

    let ciphertext = B64.encode(&buf);
    let mut value = String::with_capacity(HEADER_ENCODED_SIZE + ciphertext.len());
    B64.encode_string(header.to_bytes(), &mut value);
    if options.storage == Storage::Cookie {
        value.push_str(&ciphertext);
    }
    Ok(Sealed { header, value, ciphertext })
}

/// Checks a cookie's header (lua-resty-session `open()` up to the MAC): type, STORAGE flag
/// against the configured storage, lifetime, absolute and rolling timeouts, idling offset and
/// timeout, then the MAC with the bound values the cookie's flags demand. Reads only the
/// first 110 characters of `cookie_value`.
pub fn verify(
    keys: &Keys,
    options: &OpenOptions,
    cookie_value: &str,
    bind: &BindValues<'_>,
    now: u64,
) -> Result<Header, OpenError> {
    let bytes = decode_raw(cookie_value)?;
    let header = Header::from_bytes(&bytes)?;
    let remember = matches!(options.kind, CookieKind::Remember(_));
    let timeouts = &options.timeouts;

    if header.flags.contains(Flags::STORAGE) != (options.storage == Storage::Server) {
        return Err(OpenError::InvalidFlags);
    }

    let absolute_elapsed = header.absolute_elapsed(now);
    if absolute_elapsed > MAX_ROLLING_OFFSET as i64 {
        return Err(OpenError::LifetimeExceeded);
    }
    if timeouts.absolute != 0.0 && absolute_elapsed as f64 > timeouts.absolute {
        return Err(if remember { OpenError::RememberAbsoluteTimeout } else { OpenError::AbsoluteTimeout });
    }
    if timeouts.rolling != 0.0 && header.rolling_elapsed(now) as f64 > timeouts.rolling {
        return Err(if remember { OpenError::RememberRollingTimeout } else { OpenError::RollingTimeout });
    }
    if remember {
        if header.idling_offset != 0 {
            return Err(OpenError::InvalidIdlingOffset);
        }
    } else if timeouts.idling != 0.0 && header.idling_elapsed(now) as f64 > timeouts.idling {
        return Err(OpenError::IdlingTimeout);
    }

    let expected = compute_mac(keys, &bytes, bind);
    if !bool::from(expected.ct_eq(&header.mac)) {
        return Err(OpenError::InvalidMac);
    }
    Ok(header)
}

/// Decrypts a verified header's payload (lua-resty-session `open()` after the MAC): length
/// against the data-size field, base64url, AES-256-GCM (key per `kind`), inflate if flagged,
/// JSON. `payload` is the cookie value after its 110-character header (cookie storage) or the
/// stored ciphertext (server storage).
pub fn decrypt(keys: &Keys, kind: CookieKind, header: &Header, payload: &str) -> Result<SessionData, OpenError> {
    decode_plaintext(&decrypt_bytes(keys, kind, header, payload)?, header.flags.contains(Flags::DEFLATE))
}

/// The decrypted plaintext, still deflated if the header says so.
pub(crate) fn decrypt_bytes(
    keys: &Keys,
    kind: CookieKind,
    header: &Header,
    payload: &str,
) -> Result<Vec<u8>, OpenError> {
    if payload.len() != header.data_size as usize {
        return Err(OpenError::InvalidPayload);
    }
    let mut buf = B64.decode(payload).map_err(|_| OpenError::PayloadEncoding)?;
    let (key, iv) = keys.aead_key_iv(&header.sid, kind.safety());
    let aad = header.to_bytes();
    Aes256Gcm::new(GenericArray::from_slice(&key))
        .decrypt_in_place_detached(
            GenericArray::from_slice(&iv),
            &aad[..AAD_SIZE],
            &mut buf,
            GenericArray::from_slice(&header.tag),
        )
        .map_err(|_| OpenError::DecryptFailed)?;
    Ok(buf)
}

/// [`verify`] then [`decrypt`]. With cookie storage the payload is the rest of
/// `cookie_value` (join chunks first with [`crate::chunk::join`]) and `server_ciphertext` is
/// ignored; with server storage it is `server_ciphertext` (the record's first element, see
/// [`decode_storage_record`]), looked up by [`Header::storage_key`] and required.
pub fn open(
    keys: &Keys,
    options: &OpenOptions,
    cookie_value: &str,
    server_ciphertext: Option<&str>,
    bind: &BindValues<'_>,
    now: u64,
) -> Result<Opened, OpenError> {
    let header = verify(keys, options, cookie_value, bind, now)?;
    let payload = match options.storage {
        Storage::Cookie => cookie_value.get(HEADER_ENCODED_SIZE..).ok_or(OpenError::InvalidPayload)?,
        Storage::Server => server_ciphertext.ok_or(OpenError::MissingStoredData)?,
    };
    let data = decrypt(keys, options.kind, &header, payload)?;
    Ok(Opened { header, data })
}

/// Touches an opened session cookie (lua-resty-session `touch()`): same sid, tag and payload;
/// I = now - C - R (clamped to 0..2^24-1); MAC recomputed with `bind` (the values the cookie
/// was just verified with). `cookie_value` is the verified value (header plus payload, chunks
/// joined; or the header alone with server storage); its payload is carried over as is.
/// lua-resty-session re-sends only the first cookie of a chunked session on touch, since the
/// others do not change.
pub fn touch(keys: &Keys, header: &Header, cookie_value: &str, bind: &BindValues<'_>, now: u64) -> Touched {
    let idling_offset = header.rolling_elapsed(now).clamp(0, i64::from(MAX_IDLING_OFFSET)) as u32;
    let mut header = Header { idling_offset, ..*header };
    header.mac = compute_mac(keys, &header.to_bytes(), bind);
    let payload = cookie_value.get(HEADER_ENCODED_SIZE..).unwrap_or("");
    let mut value = String::with_capacity(HEADER_ENCODED_SIZE + payload.len());
    B64.encode_string(header.to_bytes(), &mut value);
    value.push_str(payload);
    Touched { header, value }
}

/// The stored value for server-side storage: `["<ciphertext>"]` (base64url needs no escaping).
pub fn encode_storage_record(ciphertext: &str) -> String {
    let mut s = String::with_capacity(ciphertext.len() + 4);
    s.push_str("[\"");
    s.push_str(ciphertext);
    s.push_str("\"]");
    s
}

/// Parses a stored value `["<ciphertext>"]` or `["<ciphertext>", "<info>"]`.
pub fn decode_storage_record(record: &str) -> Result<StorageRecord, OpenError> {
    let mut items: Vec<Option<String>> = serde_json::from_str(record).map_err(|_| OpenError::InvalidStoredData)?;
    let info = if items.len() > 1 { items.swap_remove(1) } else { None };
    let ciphertext = items.into_iter().next().flatten().ok_or(OpenError::InvalidStoredData)?;
    Ok(StorageRecord { ciphertext, info })
}

/// HMAC-SHA256(mac_key(sid), header[0..66] [|| "#" || SHA256(v1 "|" v2 "|" v3)])[0..16], with
/// the bound values the header's flags name, in the order ip, scheme, user-agent, empty ones
/// skipped; nothing appended when none is left.
fn compute_mac(keys: &Keys, header: &[u8; HEADER_SIZE], bind: &BindValues<'_>) -> [u8; 16] {
    let mut sid = [0u8; 32];
    sid.copy_from_slice(&header[3..35]);
    let flags = Flags(u16::from_le_bytes([header[1], header[2]]));

    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&keys.mac_key(&sid)).expect("HMAC takes any key length");
    mac.update(&header[..MAC_INPUT_SIZE]);
    if flags.intersects(Flags::BIND_ALL) {
        let mut digest = Sha256::new();
        let mut bound = false;
        for (flag, value) in
            [(Flags::BIND_IP, bind.ip), (Flags::BIND_SCHEME, bind.scheme), (Flags::BIND_USER_AGENT, bind.user_agent)]
        {
            if flags.contains(flag) && !value.is_empty() {
                if bound {
                    digest.update(b"|");
                }
                digest.update(value.as_bytes());
                bound = true;
            }
        }
        if bound {
            mac.update(b"#");
            mac.update(&digest.finalize());
        }
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}
