//! `tessera_organization_role_session`: an assumed-role session (`/v2/assumed-roles`).
//!
//! Seed 000's arguments, under both names Vultr has used (`user`/`role` and
//! `user_id`/`role_id`). A session cannot be changed: any change revokes it and assumes the
//! role again. Deleting revokes it. A session that was revoked or expired outside Terraform
//! reads as gone, so the next plan assumes the role again.

use std::net::IpAddr;

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{exactly_one, id_of, opt_text, state, text};
use crate::api::{Api, Error, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl, set};
use crate::schema::{BlockSpec, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct RoleSession;

const ARGUMENTS: &[&str] = &[
    "user",
    "user_id",
    "role",
    "role_id",
    "session_name",
    "duration",
    "ip_address",
    "auth_method",
    "oidc_issuer_id",
    "web_identity_token",
];

fn spec() -> BlockSpec {
    BlockSpec::new(
        "An assumed-role session: a time-bound token acting with exactly the role's policies. Any change replaces the session; destroying it revokes the token.",
        vec![
            computed("id", Ty::Str, "The session's id."),
            optional_computed("user", Ty::Str, "The id of the user assuming the role (or `user_id`)."),
            optional_computed("user_id", Ty::Str, "The id of the user assuming the role (or `user`)."),
            optional_computed("role", Ty::Str, "The id of the role to assume (or `role_id`)."),
            optional_computed("role_id", Ty::Str, "The id of the role to assume (or `role`)."),
            required("session_name", Ty::Str, "A name for the session."),
            optional_computed(
                "duration",
                Ty::Num,
                "The session's length in seconds: 900 up to the role's `max_session_duration` (the smaller of 3600 and that maximum when not set).",
            ),
            optional("ip_address", Ty::Str, "When set, the token works only from this address; the trust's `ip_range` is checked against it."),
            optional_computed(
                "auth_method",
                Ty::Str,
                "`api_key` (the default for users); `oidc` (the default with `oidc_issuer_id`) or `jwt` for a workload.",
            ),
            optional(
                "oidc_issuer_id",
                Ty::Str,
                "Assume as a workload: the id of the `tessera_oidc_issuer` that signed `web_identity_token` (instead of `user`).",
            ),
            optional(
                "web_identity_token",
                Ty::Str,
                "With `oidc_issuer_id`: the workload's OIDC token, sent as the bearer of the assume call.",
            )
            .sensitive(),
            computed(
                "token",
                Ty::Str,
                "The session token (`tessera_rs_…`), a bearer credential. Known only to the apply that created the session: empty after an import.",
            )
            .sensitive(),
            computed("conditions_met", Ty::list(Ty::Str), "The trust conditions that were checked and held."),
            computed("remaining_duration", Ty::Num, "Seconds left when the session was last read."),
            computed("source_ip", Ty::Str, "The address the assume request came from."),
            computed("date_assumed", Ty::Str, "When the role was assumed (RFC 3339)."),
            computed("date_expires", Ty::Str, "When the session expires (RFC 3339)."),
            computed("status", Ty::Str, "`Active` (ended sessions leave the state)."),
        ],
    )
}

fn to_state(s: &wire::AssumedRoleView, token: Val, web_identity_token: Val) -> Val {
    state(
        &spec(),
        vec![
            ("id", Val::str(&s.id)),
            ("user", Val::str(&s.user_id)),
            ("user_id", Val::str(&s.user_id)),
            ("role", Val::str(&s.role_id)),
            ("role_id", Val::str(&s.role_id)),
            ("session_name", Val::str(&s.session_name)),
            ("duration", Val::num(s.duration as f64)),
            ("ip_address", Val::opt_str(s.ip_address.as_deref())),
            ("auth_method", Val::str(&s.auth_method)),
            ("oidc_issuer_id", Val::opt_str(s.oidc_issuer_id.as_deref())),
            ("web_identity_token", web_identity_token),
            ("token", token),
            ("conditions_met", Val::strings(&s.conditions_met)),
            ("remaining_duration", Val::num(s.remaining_duration as f64)),
            ("source_ip", Val::str(&s.source_ip)),
            ("date_assumed", Val::str(&s.date_assumed)),
            ("date_expires", Val::str(&s.date_expires)),
            ("status", Val::str(&s.status)),
        ],
    )
}

/// `user` and `user_id` (and `role`, `role_id`) are one argument under two names.
fn mirror(config: &Val, planned: &mut Val, a: &str, b: &str) {
    for (from, to) in [(a, b), (b, a)] {
        if config.get(to).is_null() && !config.get(from).is_null() {
            let v = planned.get(from).clone();
            set(planned, to, v);
        }
    }
}

#[async_trait]
impl ResourceImpl for RoleSession {
    fn name(&self) -> &'static str {
        "organization_role_session"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if config.get("oidc_issuer_id").is_null() {
            exactly_one(config, "user", "user_id", d);
            if !config.get("web_identity_token").is_null() {
                d.error("web_identity_token", "web_identity_token goes with oidc_issuer_id");
            }
        } else {
            if !config.get("user").is_null() || !config.get("user_id").is_null() {
                d.error("user", "a workload assumes as itself: set oidc_issuer_id or user, not both");
            }
            if config.get("web_identity_token").is_null() {
                d.error("web_identity_token", "oidc_issuer_id needs the workload's web_identity_token");
            }
        }
        exactly_one(config, "role", "role_id", d);
        if let Some(ip) = config.get("ip_address").as_str()
            && ip.trim().parse::<IpAddr>().is_err()
        {
            d.error("ip_address", format!("ip_address: '{ip}' is not an IP address"));
        }
        if let Some(n) = config.get("duration").as_f64()
            && !(900.0..=43_200.0).contains(&n)
        {
            d.error("duration", "duration must be 900 to 43200 seconds (and at most the role's max_session_duration)");
        }
    }
    fn force_new(&self) -> &'static [&'static str] {
        ARGUMENTS
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        match (attr, a.as_str(), b.as_str()) {
            ("ip_address", Some(x), Some(y)) => match (x.trim().parse::<IpAddr>(), y.trim().parse::<IpAddr>()) {
                (Ok(x), Ok(y)) => x.to_canonical() == y.to_canonical(),
                _ => false,
            },
            _ => false,
        }
    }
    fn plan(&self, _prior: Option<&Val>, config: &Val, planned: &mut Val) {
        mirror(config, planned, "user", "user_id");
        mirror(config, planned, "role", "role_id");
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        let pick = |a: &str, b: &str| opt_text(planned, a).or_else(|| opt_text(planned, b)).unwrap_or_default();
        let issuer = opt_text(planned, "oidc_issuer_id");
        let body = wire::AssumeRequest {
            user_id: if issuer.is_some() { String::new() } else { pick("user_id", "user") },
            oidc_issuer_id: issuer.clone(),
            role_id: pick("role_id", "role"),
            session_name: text(planned, "session_name"),
            auth_method: opt_text(planned, "auth_method").or_else(|| issuer.as_ref().map(|_| "oidc".to_owned())),
            duration: planned.get("duration").as_i64(),
            ip_address: opt_text(planned, "ip_address"),
            context: None,
            policy: None,
        };
        let s = match (&issuer, opt_text(planned, "web_identity_token")) {
            // The workload's token is the credential of this one call.
            (Some(_), Some(jwt)) => api.client.with_token(jwt).assume_role(&body).await?,
            _ => api.client.assume_role(&body).await?,
        };
        let token = Val::opt_str(s.session_token.as_deref());
        Ok(to_state(&s, token, planned.get("web_identity_token").clone()))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        let id = id_of(prior)?;
        let Some(s) = found(api.client.get_assumed_role(&id).await.map_err(Into::into))? else { return Ok(None) };
        if s.status != "Active" {
            // Revoked or expired: as good as deleted.
            return Ok(None);
        }
        Ok(Some(to_state(&s, prior.get("token").clone(), prior.get("web_identity_token").clone())))
    }

    async fn update(&self, api: &Api, prior: &Val, _planned: &Val) -> Result<Val> {
        // Every argument forces a replacement, so only computed values can differ here.
        self.read(api, prior).await?.ok_or_else(|| Error::new("the session ended").at("id"))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.revoke_assumed_role(&id_of(prior)?).await.map_err(Into::into))
    }
}
