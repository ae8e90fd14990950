//! The provider's resources, and the small helpers they share: reading arguments out of a
//! planned state, building states, and the equivalences of values the server normalises.

use std::net::IpAddr;
use std::sync::Arc;

use tf_provider::DynamicResource;

use crate::api::{Error, Result};
use crate::engine::{Diags, Res, Shared, empty_object, set};
use crate::schema::BlockSpec;
use crate::value::Val;

pub mod gateway;
pub mod group;
pub mod oidc_issuer;
pub mod policy;
pub mod role;
pub mod session;
pub mod trust;
pub mod user;

/// Every resource, keyed by its type name without the `tessera_` prefix.
pub fn all(shared: &Arc<Shared>) -> Vec<(String, Box<dyn DynamicResource>)> {
    vec![
        Res::boxed(user::User, Arc::clone(shared)),
        Res::boxed(group::Group, Arc::clone(shared)),
        Res::boxed(policy::Policy, Arc::clone(shared)),
        Res::boxed(role::Role, Arc::clone(shared)),
        Res::boxed(trust::Trust, Arc::clone(shared)),
        Res::boxed(oidc_issuer::OidcIssuer, Arc::clone(shared)),
        Res::boxed(session::RoleSession, Arc::clone(shared)),
        Res::boxed(gateway::GatewayService, Arc::clone(shared)),
        Res::boxed(gateway::GatewayRoute, Arc::clone(shared)),
        Res::boxed(gateway::PluginSession, Arc::clone(shared)),
    ]
}

/// A state of this schema with the given attributes (the others null).
pub(crate) fn state(spec: &BlockSpec, pairs: Vec<(&str, Val)>) -> Val {
    let mut o = empty_object(spec);
    for (k, v) in pairs {
        set(&mut o, k, v);
    }
    o
}

/// A known, non-null string attribute.
pub(crate) fn opt_text(v: &Val, name: &str) -> Option<String> {
    v.get(name).as_str().map(str::to_owned)
}

/// A string attribute, empty when null.
pub(crate) fn text(v: &Val, name: &str) -> String {
    opt_text(v, name).unwrap_or_default()
}

/// A known, non-null list or set of strings.
pub(crate) fn opt_strings(v: &Val, name: &str) -> Option<Vec<String>> {
    let a = v.get(name);
    if a.is_wholly_known() { a.as_strings() } else { None }
}

/// The id of the object in a state.
pub(crate) fn id_of(v: &Val) -> Result<String> {
    opt_text(v, "id").filter(|s| !s.is_empty()).ok_or_else(|| Error::new("the state has no id"))
}

/// Requires exactly one of two arguments (each may still be unknown).
pub(crate) fn exactly_one(config: &Val, a: &str, b: &str, d: &mut Diags) {
    let (x, y) = (config.get(a), config.get(b));
    if x.is_null() && y.is_null() {
        d.error(a, format!("one of {a} or {b} is required"));
    } else if let (Some(x), Some(y)) = (x.as_str(), y.as_str())
        && x != y
    {
        d.error(b, format!("{a} and {b} name different objects ('{x}', '{y}'); set only one"));
    }
}

/// Compares two lists of strings element by element, case-insensitively.
pub(crate) fn same_strings_ignoring_case(a: &Val, b: &Val) -> bool {
    match (a.as_strings(), b.as_strings()) {
        (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(a, b)| a.eq_ignore_ascii_case(b)),
        _ => false,
    }
}

/// An IP address or CIDR block in canonical form (`10.0.0.1` is `10.0.0.1/32`; host bits are
/// cleared as the server does).
pub(crate) fn canonical_net(s: &str) -> Option<String> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let addr = addr.to_canonical();
    Some(match addr {
        IpAddr::V4(v4) => {
            let len = len.unwrap_or(32).min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let len = len.unwrap_or(128).min(128);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    })
}

/// The same set of networks, whatever their spelling.
pub(crate) fn same_nets(a: &Val, b: &Val) -> bool {
    let canon = |v: &Val| -> Option<Vec<String>> {
        let mut out = v.as_strings()?.iter().map(|s| canonical_net(s)).collect::<Option<Vec<_>>>()?;
        out.sort();
        out.dedup();
        Some(out)
    };
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// The same instant, whatever the offset it is written with.
pub(crate) fn same_instant(a: &Val, b: &Val) -> bool {
    let parse = |v: &Val| {
        v.as_str()
            .and_then(|s| time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok())
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Checks that a string argument, when known, is an RFC 3339 time.
pub(crate) fn check_time(config: &Val, name: &str, d: &mut Diags) {
    if let Some(s) = config.get(name).as_str()
        && time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).is_err()
    {
        d.error(name, format!("{name}: '{s}' is not an RFC 3339 time such as 2031-01-01T00:00:00Z"));
    }
}

/// Reads the whole list of strings each element of which must satisfy `ok`.
pub(crate) fn check_each(config: &Val, name: &str, d: &mut Diags, ok: impl Fn(&str) -> bool, what: &str) {
    if let Some(items) = config.get(name).as_list() {
        for s in items.iter().filter_map(Val::as_str) {
            if !ok(s) {
                d.error(name, format!("{name}: '{s}' is not {what}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_compare_in_canonical_form() {
        assert_eq!(canonical_net("10.0.0.1").as_deref(), Some("10.0.0.1/32"));
        assert_eq!(canonical_net("10.1.2.3/8").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(canonical_net("::ffff:10.0.0.1").as_deref(), Some("10.0.0.1/32"));
        assert_eq!(canonical_net("2001:db8::1/32").as_deref(), Some("2001:db8::/32"));
        assert!(canonical_net("nope").is_none());
        assert!(same_nets(&Val::strings(["10.0.0.1", "192.0.2.0/24"]), &Val::strings(["192.0.2.0/24", "10.0.0.1/32"])));
    }

    #[test]
    fn instants_compare_across_offsets() {
        assert!(same_instant(&Val::str("2031-01-01T01:00:00+01:00"), &Val::str("2031-01-01T00:00:00Z")));
        assert!(!same_instant(&Val::str("2031-01-01T01:00:00Z"), &Val::str("2031-01-01T00:00:00Z")));
    }
}
