//! `tessera_oidc_issuer`: an OIDC issuer whose tokens can assume roles (`/v2/oidc/issuer`),
//! in the shape of Vultr's `vultr_oidc_issuer`: `source`, `uri`, and one inline key's
//! members (`kty`, `kid`, `n`, `e`, `alg`, `use`, plus `crv`, `x`, `y` for EC and Ed25519
//! keys). Without a key, Tessera discovers the issuer's keys from `uri`.
//!
//! Unlike Vultr's (every argument replaces the issuer), a change is made in place (PATCH),
//! so trusts that name the issuer survive a key rotation.

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{id_of, opt_text, state};
use crate::api::{Api, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl};
use crate::schema::{BlockSpec, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct OidcIssuer;

/// The inline key's members, as the API names them.
const KEY_MEMBERS: [&str; 9] = ["kty", "kid", "n", "e", "crv", "x", "y", "alg", "use"];

fn spec() -> BlockSpec {
    BlockSpec::new(
        "An OIDC issuer (a CI platform, a Kubernetes cluster) whose tokens can assume roles through trusts with `oidc_issuer`. Give one public key inline, or none to have Tessera discover the keys from `uri`.",
        vec![
            computed("id", Ty::Str, "The issuer's id."),
            optional_computed("source", Ty::Str, "`external` (the default and the only source served)."),
            required("uri", Ty::Str, "The issuer identifier: exactly the `iss` of its tokens (https)."),
            optional("kty", Ty::Str, "The inline key's type: `RSA`, `EC` or `OKP`."),
            optional("kid", Ty::Str, "The inline key's id (tokens name it in their `kid`)."),
            optional("n", Ty::Str, "RSA: the modulus (base64url)."),
            optional("e", Ty::Str, "RSA: the exponent (base64url)."),
            optional("crv", Ty::Str, "EC or OKP: the curve (`P-256`, `P-384`, `Ed25519`)."),
            optional("x", Ty::Str, "EC or OKP: the public key's x (base64url)."),
            optional("y", Ty::Str, "EC: the public key's y (base64url)."),
            optional("alg", Ty::Str, "The only algorithm tokens signed with this key may use."),
            optional("use", Ty::Str, "`sig`."),
            computed("keys_source", Ty::Str, "`inline` or `discovered`."),
            computed("date_created", Ty::Str, "When the issuer was registered (RFC 3339)."),
        ],
    )
}

fn to_state(i: &wire::oidc::IssuerView, planned: Option<&Val>) -> Val {
    // The API shows RSA members back; the curve members are kept as planned (the answer
    // carries the first key's Vultr fields only).
    let kept = |name: &str| planned.map_or(Val::Null, |p| p.get(name).clone());
    state(
        &spec(),
        vec![
            ("id", Val::str(&i.id)),
            ("source", Val::str(&i.source)),
            ("uri", Val::str(&i.uri)),
            ("kty", Val::opt_str(i.kty.as_deref())),
            ("kid", Val::opt_str(i.kid.as_deref())),
            ("n", Val::opt_str(i.n.as_deref())),
            ("e", Val::opt_str(i.e.as_deref())),
            ("crv", kept("crv")),
            ("x", kept("x")),
            ("y", kept("y")),
            ("alg", Val::opt_str(i.alg.as_deref())),
            ("use", Val::opt_str(i.use_.as_deref())),
            ("keys_source", Val::str(&i.keys_source)),
            ("date_created", Val::str(&i.date_created)),
        ],
    )
}

fn input(planned: &Val) -> wire::oidc::IssuerInput {
    let m = |name: &str| opt_text(planned, name);
    wire::oidc::IssuerInput {
        source: m("source"),
        uri: m("uri"),
        kty: m("kty"),
        kid: m("kid"),
        n: m("n"),
        e: m("e"),
        crv: m("crv"),
        x: m("x"),
        y: m("y"),
        alg: m("alg"),
        use_: m("use"),
        ..Default::default()
    }
}

#[async_trait]
impl ResourceImpl for OidcIssuer {
    fn name(&self) -> &'static str {
        "oidc_issuer"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if let Some(s) = config.get("source").as_str()
            && s != "external"
        {
            d.error("source", format!("source: only \"external\" issuers can be registered, found \"{s}\""));
        }
        let any_key = KEY_MEMBERS.iter().any(|m| !config.get(m).is_null());
        if any_key && config.get("kty").is_null() {
            d.error("kty", "an inline key needs its kty (RSA, EC or OKP)");
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        Ok(to_state(&api.client.create_oidc_issuer(&input(planned)).await?, Some(planned)))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        let id = id_of(prior)?;
        Ok(found(api.client.get_oidc_issuer(&id).await.map_err(Into::into))?.map(|i| to_state(&i, Some(prior))))
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        Ok(to_state(&api.client.update_oidc_issuer(&id, &input(planned)).await?, Some(planned)))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_oidc_issuer(&id_of(prior)?).await.map_err(Into::into))
    }
}
