//! Typed identifiers, so a role id can never be passed where a user id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Builds an id from 16 random bytes the caller drew (UUID version 4 layout).
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
            /// A time-ordered id (UUID version 7 layout: Unix milliseconds, then random bits).
            /// Rows keyed by such ids are appended at the end of their index instead of
            /// dirtying a random page per insert.
            pub fn time_ordered(unix_ms: u64, random: [u8; 10]) -> Self {
                Self(uuid::Builder::from_unix_timestamp_millis(unix_ms, &random).into_uuid())
            }
            pub fn generate(rng: &mut impl rand::RngCore) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                Self::from_random(bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

id_type!(
    /// An organization: the tenancy boundary. Every stored row carries one.
    OrgId,
    UserId,
    ApiKeyId,
    GroupId,
    PolicyId,
    RoleId,
    TrustId,
    /// A registered OIDC issuer whose tokens can assume roles.
    OidcIssuerId,
    /// The public id of any session (assumed-role, login, gateway); never its token.
    SessionId,
);
