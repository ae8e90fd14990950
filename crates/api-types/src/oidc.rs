//! OIDC issuers under `/v2/oidc/issuer`, in Vultr's shape: `{"issuer": {...}}` on read,
//! the object itself on create (what govultr decodes), `{"issuers": [...], "meta"}` on list.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Meta;

/// Create or replace an issuer. Vultr's clients send it wrapped (`{"issuer": {...}}`) or
/// flat; both are read. One inline key may be given flat (Vultr's `kty`, `kid`, `n`, `e`,
/// `alg`, `use`, plus `crv`, `x`, `y` for EC and Ed25519 keys), several as `keys`; with
/// none, the keys are discovered from `uri`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerInput {
    /// `external` (the default): an issuer outside Tessera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Vultr's id of the source's own object; kept for compatibility, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The issuer identifier: its tokens' `iss`, and where its discovery document is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "use")]
    pub use_: Option<String>,
    /// Several inline public keys (JWK objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<Value>>,
}

/// Vultr's wrapped form of [`IssuerInput`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerInputEnvelope {
    pub issuer: IssuerInput,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
pub struct IssuerView {
    pub id: String,
    pub source: String,
    pub uri: String,
    /// The first inline key's members, flat as Vultr shows them (null for discovered keys).
    pub kty: Option<String>,
    pub kid: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub alg: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// `inline` (given at registration) or `discovered` (fetched from `uri`).
    pub keys_source: String,
    /// When this node last fetched the keys, and until when it keeps them (discovered keys).
    pub jwks_fetched_at: Option<String>,
    pub jwks_expires_at: Option<String>,
    pub date_created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IssuerEnvelope {
    pub issuer: IssuerView,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IssuerList {
    pub issuers: Vec<IssuerView>,
    pub meta: Meta,
}

/// `GET /v2/oidc/issuer/{id}/jwks`: the public keys tokens of the issuer are checked against.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Jwks {
    pub keys: Vec<Value>,
}
