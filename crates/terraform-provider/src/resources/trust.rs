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
            optional("user", Ty::Str, "The id of the trusted user. Exactly one of `user` and `group`."),
            optional("group", Ty::Str, "The id of the trusted group. Exactly one of `user` and `group`."),
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
            ("type", Val::str(&t.trust_type)),
            ("ip_range", Val::strings(&t.conditions.ip_address)),
            ("hour_start", tod.map_or(Val::Null, |w| Val::num(w.start as f64))),
            ("hour_end", tod.map_or(Val::Null, |w| Val::num(w.end as f64))),
            ("date_expires", Val::opt_str(t.valid_until.as_deref())),
            ("date_created", Val::str(&t.date_created)),
        ],
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
        trusted_oidc_issuer_id: None,
        // Always sent whole: an empty list clears the address condition.
        conditions: Some(wire::Conditions {
            ip_address: opt_strings(planned, "ip_range").unwrap_or_default(),
            time_of_day,
            oidc_claims: None,
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
        let (u, g) = (config.get("user"), config.get("group"));
        if u.is_null() && g.is_null() {
            d.error("user", "one of user or group is required");
        } else if !u.is_null() && !g.is_null() {
            d.error("group", "set only one of user and group");
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
