//! Bearer tokens: 256 random bits behind a readable prefix, stored only as a SHA-256 digest.
//!
//! A plain SHA-256 is the right digest here (not a password hash): the input already has 256
//! bits of entropy, so there is nothing to brute-force, and the hot path stays one hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token grants; the prefix tells a secret scanner (and the server) which kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    ApiKey,
    RoleSession,
    LoginSession,
    GatewaySession,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "tessera_ak_",
            Self::RoleSession => "tessera_rs_",
            Self::LoginSession => "tessera_ls_",
            Self::GatewaySession => "tessera_gs_",
        }
    }

    /// The kind a presented token claims. Anything without a session prefix is looked up as an
    /// API key, because an operator-chosen bootstrap key may have any shape.
    pub fn of(token: &str) -> Self {
        [Self::RoleSession, Self::LoginSession, Self::GatewaySession]
            .into_iter()
            .find(|k| token.starts_with(k.prefix()))
            .unwrap_or(Self::ApiKey)
    }
}

/// The SHA-256 of a token: the only form in which a token is ever stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
    /// A public handle for what this token opened (24 hex characters of the digest): whoever
    /// holds the token can recompute it; nobody can recover the token from it.
    pub fn handle(&self) -> String {
        self.0[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Constant-time equality, for the final check after an indexed lookup.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A freshly minted token: shown to its owner once, then only its digest remains.
pub struct NewToken {
    pub secret: String,
    pub digest: TokenDigest,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken").field("secret", &"<redacted>").finish()
    }
}

pub fn mint(kind: TokenKind, rng: &mut impl rand::RngCore) -> NewToken {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let secret = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes));
    let digest = TokenDigest::of(&secret);
    NewToken { secret, digest }
}

/// An operator-chosen bootstrap API key must be long enough to carry real entropy.
pub const MIN_BOOTSTRAP_KEY_LEN: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn minted_tokens_carry_their_prefix_and_256_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t = mint(TokenKind::RoleSession, &mut rng);
        assert!(t.secret.starts_with("tessera_rs_"));
        assert_eq!(t.secret.len(), "tessera_rs_".len() + 43);
        assert_eq!(TokenKind::of(&t.secret), TokenKind::RoleSession);
        assert_eq!(t.digest, TokenDigest::of(&t.secret));
        let other = mint(TokenKind::RoleSession, &mut rng);
        assert_ne!(t.secret, other.secret);
        assert!(!format!("{t:?}").contains(&t.secret));
    }

    #[test]
    fn unprefixed_tokens_are_api_keys() {
        assert_eq!(TokenKind::of("my-own-bootstrap-key-of-32-chars!!"), TokenKind::ApiKey);
        assert_eq!(TokenKind::of("tessera_ls_abc"), TokenKind::LoginSession);
        assert!(TokenDigest::of("a").ct_eq(&TokenDigest::of("a")));
        assert!(!TokenDigest::of("a").ct_eq(&TokenDigest::of("b")));
    }
}
