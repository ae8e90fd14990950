//! `tessera_organization_role_trust`: who may assume a role, from where, when and until when
//! (`/v2/role-trusts`).
//!
//! Unlike Vultr's provider, a read sets `role`, `user` and `group` from the API (so an import
//! does not force a replacement), every update sends the whole trust (so `ip_range` can be
//! cleared), and the principal changes in place.

use async_trait::async_trait;
use tessera_api_types as wire;

use super::{
    canonical_net, check_each, check_time, id_of, opt_strings, opt_text, same_instant, same_nets, state, text,
};
use crate::api::{Api, Result, found, gone_is_fine};
use crate::engine::{Diags, ResourceImpl};
use crate::schema::{BlockSpec, computed, optional, optional_computed, required};
use crate::value::{Ty, Val};

pub struct Trust;

fn spec() -> BlockSpec {
    BlockSpec::new(
        "A role trust: lets a user, or the members of a group, assume a role, optionally only from some addresses, between some hours and until a date.",
        vec![
            computed("id", Ty::Str, "The trust's id."),
            required("role", Ty::Str, "The id of the role. Changing it replaces the trust."),
            optional("user", Ty::Str, "The id of the trusted user. Exactly one of `user`, `group` and `oidc_issuer`."),
            optional(
                "group",
                Ty::Str,
                "The id of the trusted group. Exactly one of `user`, `group` and `oidc_issuer`.",
            ),
            optional(
                "oidc_issuer",
                Ty::Str,
                "The id of a trusted `tessera_oidc_issuer`: workloads whose tokens it signs, narrowed by `oidc_claims`. Exactly one of `user`, `group` and `oidc_issuer`.",
            ),
            optional(
                "oidc_claims",
                Ty::Map(Box::new(Ty::list(Ty::Str))),
                "With `oidc_issuer` (and then required): claim → the values it may take, each exact or a glob with `*`. Must constrain `aud` and `sub`.",
            ),
            optional_computed(
                "type",
                Ty::Str,
                "The trust type (`trust_type`): `TemporaryAssumption`, the default and the only type evaluated.",
            ),
            optional(
                "ip_range",
                Ty::set(Ty::Str),
                "IP addresses or CIDR blocks the session's address must be in. Empty or unset: any address.",
            ),
            optional(
                "hour_start",
                Ty::Num,
                "UTC hour (0–23) from which the trust allows assuming. Set with `hour_end`.",
            ),
            optional(
                "hour_end",
                Ty::Num,
                "UTC hour (1–24, exclusive) until which the trust allows assuming; smaller than `hour_start` wraps past midnight.",
            ),
            optional(
                "date_expires",
                Ty::Str,
                "RFC 3339 time after which the trust no longer allows assuming (`valid_until`).",
            ),
            computed("date_created", Ty::Str, "When the trust was created (RFC 3339)."),
        ],
    )
}

fn to_state(t: &wire::TrustView) -> Val {
    let tod = t.conditions.time_of_day.as_ref();
    state(
        &spec(),
        vec![
            ("id", Val::str(&t.id)),
            ("role", Val::str(&t.role_id)),
            ("user", Val::opt_str(t.trusted_user_id.as_deref())),
            ("group", Val::opt_str(t.trusted_group_id.as_deref())),
            ("oidc_issuer", Val::opt_str(t.trusted_oidc_issuer_id.as_deref())),
            ("oidc_claims", t.conditions.oidc_claims.as_ref().map_or(Val::Null, claims_val)),
            ("type", Val::str(&t.trust_type)),
            ("ip_range", Val::strings(&t.conditions.ip_address)),
            ("hour_start", tod.map_or(Val::Null, |w| Val::num(w.start as f64))),
            ("hour_end", tod.map_or(Val::Null, |w| Val::num(w.end as f64))),
            ("date_expires", Val::opt_str(t.valid_until.as_deref())),
            ("date_created", Val::str(&t.date_created)),
        ],
    )
}

/// `oidc_claims` as the API takes it: claim → list of values.
fn claims_json(v: &Val) -> Option<serde_json::Value> {
    let m = v.as_obj()?;
    let obj = m.iter().map(|(k, vals)| (k.clone(), serde_json::json!(vals.as_strings().unwrap_or_default()))).collect();
    Some(serde_json::Value::Object(obj))
}

/// `oidc_claims` as the API shows it (a value or a list) in the state's shape (always lists).
fn claims_val(v: &serde_json::Value) -> Val {
    let Some(m) = v.as_object() else { return Val::Null };
    Val::Obj(
        m.iter()
            .map(|(k, x)| {
                let vals: Vec<String> = match x {
                    serde_json::Value::String(s) => vec![s.clone()],
                    serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
                    _ => vec![],
                };
                (k.clone(), Val::strings(vals))
            })
            .collect(),
    )
}

fn input(planned: &Val) -> wire::TrustInput {
    let time_of_day = match (planned.get("hour_start").as_i64(), planned.get("hour_end").as_i64()) {
        (Some(start), Some(end)) => Some(wire::TimeOfDay { start, end, ..Default::default() }),
        _ => None,
    };
    wire::TrustInput {
        role_id: text(planned, "role"),
        trust_type: opt_text(planned, "type"),
        trusted_user_id: opt_text(planned, "user"),
        trusted_group_id: opt_text(planned, "group"),
        trusted_oidc_issuer_id: opt_text(planned, "oidc_issuer"),
        // Always sent whole: an empty list clears the address condition.
        conditions: Some(wire::Conditions {
            ip_address: opt_strings(planned, "ip_range").unwrap_or_default(),
            time_of_day,
            oidc_claims: claims_json(planned.get("oidc_claims")),
        }),
        valid_until: opt_text(planned, "date_expires"),
    }
}

#[async_trait]
impl ResourceImpl for Trust {
    fn name(&self) -> &'static str {
        "organization_role_trust"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        let set = ["user", "group", "oidc_issuer"].iter().filter(|n| !config.get(n).is_null()).count();
        if set == 0 {
            d.error("user", "one of user or group is required (or oidc_issuer)");
        } else if set > 1 {
            d.error("group", "set only one of user and group, or oidc_issuer alone");
        }
        if !config.get("oidc_claims").is_null() && config.get("oidc_issuer").is_null() {
            d.error("oidc_claims", "oidc_claims go with oidc_issuer");
        }
        let (s, e) = (config.get("hour_start"), config.get("hour_end"));
        if s.is_null() != e.is_null() {
            d.error("hour_end", "hour_start and hour_end go together: set both or neither");
        }
        if let Some(s) = s.as_f64()
            && !(0.0..=23.0).contains(&s)
        {
            d.error("hour_start", "hour_start must be 0 to 23");
        }
        if let Some(e) = e.as_f64()
            && !(0.0..=24.0).contains(&e)
        {
            d.error("hour_end", "hour_end must be 0 to 24");
        }
        check_each(config, "ip_range", d, |s| canonical_net(s).is_some(), "an IP address or CIDR block");
        check_time(config, "date_expires", d);
        if let Some(t) = config.get("type").as_str()
            && t != "TemporaryAssumption"
        {
            d.error("type", format!("type: only \"TemporaryAssumption\" is supported, found \"{t}\""));
        }
    }
    fn force_new(&self) -> &'static [&'static str] {
        &["role"]
    }
    fn equivalent(&self, attr: &str, a: &Val, b: &Val) -> bool {
        match attr {
            "ip_range" => same_nets(a, b),
            "date_expires" => same_instant(a, b),
            _ => false,
        }
    }

    async fn create(&self, api: &Api, planned: &Val) -> Result<Val> {
        Ok(to_state(&api.client.create_trust(&input(planned)).await?))
    }

    async fn read(&self, api: &Api, prior: &Val) -> Result<Option<Val>> {
        let id = id_of(prior)?;
        Ok(found(api.client.get_trust(&id).await.map_err(Into::into))?.map(|t| to_state(&t)))
    }

    async fn update(&self, api: &Api, prior: &Val, planned: &Val) -> Result<Val> {
        let id = id_of(prior)?;
        Ok(to_state(&api.client.update_trust(&id, &input(planned)).await?))
    }

    async fn delete(&self, api: &Api, prior: &Val) -> Result<()> {
        gone_is_fine(api.client.delete_trust(&id_of(prior)?).await.map_err(Into::into))
    }
}
