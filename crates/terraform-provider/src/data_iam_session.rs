//! Data source `tessera_iam_session`: sessions of every kind (seed 002's `iam.Session`
//! records), from `GET /v2/iam/sessions`.
//!
//! `filter` is passed as `$filter`; every other argument named like a record field is an
//! equality test joined to it with `and`. Every matching record lands in `results`, fetched
//! page after page (`$top`, then `$skiptoken` or, when the server gives none, `$skip`).

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::api::{Api, Error, Result};
use crate::engine::{DataImpl, Diags, set};
use crate::schema::{AttrSpec, BlockSpec, computed, optional};
use crate::value::{Ty, Val, from_json};

pub struct IamSession;

/// The record's fields: name, type, description. All can be equality arguments but
/// `session_id`, which the server cannot filter on (it is matched here instead).
const FIELDS: &[(&str, Ty, &str)] = &[
    ("moid", Ty::Str, "The session's id."),
    ("session_id", Ty::Str, "A public handle derived from the token's digest (never the token)."),
    ("kind", Ty::Str, "`login`, `assumed_role` or `gateway`."),
    ("user_id", Ty::Str, "The id of the session's user."),
    ("user_id_or_email", Ty::Str, "The email address of the session's user."),
    ("role", Ty::Str, "The assumed role's name (assumed-role sessions)."),
    ("role_id", Ty::Str, "The assumed role's id (assumed-role sessions)."),
    ("session_name", Ty::Str, "The session's name (assumed-role sessions)."),
    ("client_ip_address", Ty::Str, "The address the session was started from."),
    ("create_time", Ty::Str, "When the session was created (RFC 3339)."),
    ("mod_time", Ty::Str, "When the record last changed (RFC 3339)."),
    ("expiration", Ty::Str, "When the session expires at the latest (RFC 3339)."),
    ("idle_time_expiration", Ty::Str, "When the session ends if idle (RFC 3339; login sessions)."),
    ("end_time", Ty::Str, "When the session ended (RFC 3339)."),
    ("status", Ty::Str, "`Active`, `Ended` or `Terminated`."),
    ("end_reason", Ty::Str, "`logout`, `idle_timeout`, `expired`, `terminated` or `replaced`."),
    ("failed_logins", Ty::Num, "Failed sign-ins between the previous successful one and this one."),
    ("last_login_time", Ty::Str, "The user's previous sign-in (RFC 3339)."),
    ("last_login_client", Ty::Str, "The address of the user's previous sign-in."),
    ("account_moid", Ty::Str, "The organization's id."),
];

const DEFAULT_TOP: i64 = 100;

fn result_ty() -> Ty {
    Ty::Obj(FIELDS.iter().map(|(n, t, _)| ((*n).to_owned(), t.clone())).collect())
}

fn spec() -> BlockSpec {
    let mut attrs: Vec<AttrSpec> = vec![
        optional("filter", Ty::Str, "An OData `$filter`, e.g. `status eq 'Active' and create_time gt now() sub PT2H`."),
        optional("orderby", Ty::Str, "An OData `$orderby`, e.g. `create_time desc`."),
        optional("page_size", Ty::Num, "Records asked for per request (`$top`, 1–1000; 100)."),
    ];
    attrs.extend(FIELDS.iter().map(|(n, t, d)| optional(n, t.clone(), d)));
    attrs.push(computed("id", Ty::Str, "The filter that was applied (`*` for none)."));
    attrs.push(computed(
        "total",
        Ty::Num,
        "How many records matched (`Count`; `count` is a reserved name in Terraform).",
    ));
    attrs.push(computed("results", Ty::list(result_ty()), "Every matching record, in the server's order."));
    BlockSpec::new(
        "Sessions of every kind (sign-ins, assumed roles, gateway sessions). The results are in `results`: `data.tessera_iam_session.NAME.results[i].FIELD`.",
        attrs,
    )
}

/// An OData string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `$filter` from `filter` and the equality arguments.
fn filter_of(config: &Val) -> Option<String> {
    let mut parts = vec![];
    if let Some(f) = config.get("filter").as_str().map(str::trim).filter(|f| !f.is_empty()) {
        parts.push(format!("({f})"));
    }
    for (name, ty, _) in FIELDS {
        if *name == "session_id" {
            continue;
        }
        match (ty, config.get(name)) {
            (Ty::Num, v) if v.as_i64().is_some() => parts.push(format!("{name} eq {}", v.as_i64().unwrap_or(0))),
            (_, v) if v.as_str().is_some() => {
                parts.push(format!("{name} eq {}", quote(v.as_str().unwrap_or_default())))
            }
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

#[async_trait]
impl DataImpl for IamSession {
    fn name(&self) -> &'static str {
        "iam_session"
    }
    fn schema(&self) -> BlockSpec {
        spec()
    }
    fn validate(&self, config: &Val, d: &mut Diags) {
        if let Some(n) = config.get("page_size").as_f64()
            && !(1.0..=1000.0).contains(&n)
        {
            d.error("page_size", "page_size must be 1 to 1000");
        }
    }

    async fn read(&self, api: &Api, config: &Val) -> Result<Val> {
        let filter = filter_of(config);
        let orderby = config.get("orderby").as_str().map(str::to_owned);
        let top = config.get("page_size").as_i64().unwrap_or(DEFAULT_TOP);
        let want_handle = config.get("session_id").as_str().map(str::to_owned);
        let mut rows: Vec<serde_json::Map<String, Json>> = vec![];
        let mut token: Option<String> = None;
        let mut total: Option<u64> = None;
        loop {
            let top_s = top.to_string();
            let skip_s = rows.len().to_string();
            let mut q: Vec<(&str, &str)> = vec![("$top", &top_s)];
            if let Some(f) = &filter {
                q.push(("$filter", f));
            }
            if let Some(o) = &orderby {
                q.push(("$orderby", o));
            }
            match &token {
                Some(t) => q.push(("$skiptoken", t)),
                None if !rows.is_empty() => q.push(("$skip", &skip_s)),
                None => {}
            }
            let page = api.client.query_sessions(&q).await.map_err(|e| {
                let e = Error::from(e);
                if e.detail.contains("$filter") { e.at("filter") } else { e }
            })?;
            total = total.or(page.count);
            let got = page.results.unwrap_or_default();
            let n = got.len();
            rows.extend(got);
            token = page.next_skip_token;
            let done = n == 0 || (n as i64) < top || total.is_some_and(|t| rows.len() as u64 >= t);
            if done {
                break;
            }
            if rows.len() > 1_000_000 {
                return Err(Error::new("more than a million sessions match; narrow the filter").at("filter"));
            }
        }
        if let Some(h) = &want_handle {
            rows.retain(|r| r.get("session_id").and_then(Json::as_str) == Some(h.as_str()));
        }
        let results: Vec<Val> = rows
            .iter()
            .map(|r| {
                Val::Obj(
                    FIELDS
                        .iter()
                        .map(|(n, _, _)| ((*n).to_owned(), from_json(r.get(*n).unwrap_or(&Json::Null))))
                        .collect(),
                )
            })
            .collect();
        let mut out = config.clone();
        set(&mut out, "id", Val::str(filter.unwrap_or_else(|| "*".into())));
        set(&mut out, "total", Val::num(results.len() as f64));
        set(&mut out, "results", Val::List(results));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::empty_object;

    #[test]
    fn equality_arguments_join_the_filter() {
        let mut c = empty_object(&spec());
        assert_eq!(filter_of(&c), None);
        set(&mut c, "filter", Val::str("create_time gt now() sub PT2H"));
        set(&mut c, "status", Val::str("Active"));
        set(&mut c, "user_id_or_email", Val::str("o'brien@example.com"));
        set(&mut c, "failed_logins", Val::num(0));
        assert_eq!(
            filter_of(&c).unwrap(),
            "(create_time gt now() sub PT2H) and user_id_or_email eq 'o''brien@example.com' and status eq 'Active' and failed_logins eq 0"
        );
    }
}
