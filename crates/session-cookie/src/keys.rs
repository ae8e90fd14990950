//! Key material: IKM = SHA-256(secret), PRK = HKDF-Extract(SHA-256, salt = "", IKM), and the
//! per-session-id keys derived from them (lua-resty-session `utils.lua`
//! `derive_aes_gcm_256_key_and_iv`, `derive_hmac_sha256_key`).

use std::fmt;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

const ENCRYPTION: &[u8] = b"encryption:";
const AUTHENTICATION: &[u8] = b"authentication:";

/// The key material of one secret, derived once and shared by every cookie.
///
/// Holds the IKM (needed as the PBKDF2 password of remember cookies) and the HKDF state keyed
/// with the PRK, so deriving a cookie's keys is only HKDF-Expand.
#[derive(Clone)]
pub struct Keys {
    ikm: [u8; 32],
    hkdf: Hkdf<Sha256>,
}

impl Keys {
    /// Keys of a secret string, as Kong's `secret` / lua-resty-session's `secret` option:
    /// IKM = SHA-256(secret).
    pub fn from_secret(secret: impl AsRef<[u8]>) -> Self {
        Self::from_ikm(Sha256::digest(secret.as_ref()).into())
    }

    /// Keys of a raw 32-byte IKM (lua-resty-session's `ikm` option).
    pub fn from_ikm(ikm: [u8; 32]) -> Self {
        // Salt "" is, per RFC 5869, HashLen zero bytes; `None` does exactly that.
        let (_, hkdf) = Hkdf::<Sha256>::extract(None, &ikm);
        Self { ikm, hkdf }
    }

    /// The 32-byte input key material.
    pub fn ikm(&self) -> &[u8; 32] {
        &self.ikm
    }

    /// HMAC-SHA256 key of a session id: HKDF-Expand(PRK, "authentication:" || sid, 32).
    pub(crate) fn mac_key(&self, sid: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.hkdf.expand_multi_info(&[AUTHENTICATION, sid], &mut out).expect("32 bytes is a valid HKDF length");
        out
    }

    /// AES-256-GCM key and IV of a session id: HKDF-Expand(PRK, "encryption:" || sid, 44), or
    /// for remember cookies PBKDF2-HMAC-SHA256(password = IKM, salt = "encryption:" || sid).
    pub(crate) fn aead_key_iv(&self, sid: &[u8; 32], safety: RememberSafety) -> ([u8; 32], [u8; 12]) {
        let mut okm = [0u8; 44];
        match safety.iterations() {
            None => self.hkdf.expand_multi_info(&[ENCRYPTION, sid], &mut okm).expect("44 bytes is a valid HKDF length"),
            Some(rounds) => {
                let mut salt = [0u8; ENCRYPTION.len() + 32];
                salt[..ENCRYPTION.len()].copy_from_slice(ENCRYPTION);
                salt[ENCRYPTION.len()..].copy_from_slice(sid);
                pbkdf2::pbkdf2_hmac::<Sha256>(&self.ikm, &salt, rounds, &mut okm);
            }
        }
        let mut key = [0u8; 32];
        let mut iv = [0u8; 12];
        key.copy_from_slice(&okm[..32]);
        iv.copy_from_slice(&okm[32..]);
        (key, iv)
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys { .. }")
    }
}

/// lua-resty-session's `remember_safety`: how a remember cookie's data key is derived.
///
/// Only remember cookies use it; session cookies always use HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RememberSafety {
    /// HKDF, like a session cookie.
    None,
    /// PBKDF2-HMAC-SHA256, 1,000 iterations.
    Low,
    /// PBKDF2-HMAC-SHA256, 10,000 iterations (the default, and what Kong uses).
    #[default]
    Medium,
    /// PBKDF2-HMAC-SHA256, 100,000 iterations.
    High,
    /// PBKDF2-HMAC-SHA256, 1,000,000 iterations.
    VeryHigh,
}

impl RememberSafety {
    /// PBKDF2 iterations, or `None` for HKDF.
    pub const fn iterations(self) -> Option<u32> {
        match self {
            Self::None => None,
            Self::Low => Some(1_000),
            Self::Medium => Some(10_000),
            Self::High => Some(100_000),
            Self::VeryHigh => Some(1_000_000),
        }
    }

    /// Parses lua-resty-session's option value: `None`, `Low`, `Medium`, `High`, `Very High`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "None" => Self::None,
            "Low" => Self::Low,
            "Medium" => Self::Medium,
            "High" => Self::High,
            "Very High" => Self::VeryHigh,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prk_is_hmac_of_ikm_under_zero_key() {
        use hmac::{Hmac, Mac};
        let keys = Keys::from_secret("s");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0u8; 32]).unwrap();
        mac.update(keys.ikm());
        let prk = mac.finalize().into_bytes();
        let sid = [7u8; 32];
        let mut expect = [0u8; 32];
        Hkdf::<Sha256>::from_prk(&prk).unwrap().expand_multi_info(&[AUTHENTICATION, &sid], &mut expect).unwrap();
        assert_eq!(keys.mac_key(&sid), expect);
    }

    #[test]
    fn safety_names() {
        assert_eq!(RememberSafety::from_name("Very High"), Some(RememberSafety::VeryHigh));
        assert_eq!(RememberSafety::from_name("medium"), None);
        assert_eq!(RememberSafety::default().iterations(), Some(10_000));
        assert_eq!(format!("{:?}", Keys::from_secret("x")), "Keys { .. }");
    }
}
