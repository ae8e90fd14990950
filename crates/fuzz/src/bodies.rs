//! Every JSON request body of `/v2` under fuzz input, parsed with the server's own
//! `parse_json` (which names the failing field) and converted to the app's types with the
//! functions the handlers call (`tessera_server::edge`). Handlers that convert inline
//! (assume, API keys, members, sign-in, session limits) are followed step by step with the
//! same public functions. Gateway objects go through the checks `App` makes before a write,
//! including the round trip through their stored JSON.
//!
//! Whatever the body, the answer is a value or a 4xx error: never a panic, never a 5xx.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tessera_api_types as wire;
use tessera_app::gateway::GatewayResource;
use tessera_domain::gateway::{Plugin, Route, Service, check_text, merge_patch};
use tessera_domain::ids::{OrgId, RoleId, UserId};
use tessera_domain::login::SessionLimits;
use tessera_domain::user;
use tessera_server::ApiError;
use tessera_server::edge::{
    body_id, form_pairs, group_input, new_user, parse_ip, parse_json, parse_time, policy_input, role_input,
    trust_input, user_patch,
};

/// The bodies, in the order of the selector byte.
pub const BODIES: &[&str] = &[
    "UserCreate",
    "UserUpdate",
    "ApiKeyCreate",
    "GroupInput",
    "GroupMemberAdd",
    "PolicyInput",
    "RoleInput",
    "TrustInput",
    "AssumeRequest",
    "SignInRequest",
    "SessionLimitsView",
    "gateway Service (create/put)",
    "gateway Route (create/put)",
    "gateway Plugin (create/put)",
    "gateway Service (patch)",
    "gateway Route (patch)",
    "gateway Plugin (patch)",
    "introspection form",
];

/// Runs one input: the first byte picks the body (see [`BODIES`]), the rest is the body.
pub fn fuzz_bodies(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else { return };
    let result = match usize::from(which) % BODIES.len() {
        0 => convert(body, |b| {
            let u = new_user(b)?;
            clean_lines(&[u.email.as_str(), &u.first_name, &u.last_name]);
            Ok(())
        }),
        1 => convert(body, |b| {
            let u = user_patch(b)?;
            let email = u.email.as_ref().map(|e| e.as_str());
            clean_lines(&[
                email.unwrap_or(""),
                u.first_name.as_deref().unwrap_or(""),
                u.last_name.as_deref().unwrap_or(""),
            ]);
            Ok(())
        }),
        2 => convert(body, |b: wire::ApiKeyCreate| {
            clean_lines(&[&user::name("name", &b.name, 100)?]);
            b.date_expire.as_deref().map(|s| parse_time("date_expire", s)).transpose()
        }),
        3 => convert(body, |b| {
            let g = group_input(b)?;
            clean_lines(&[&g.display_name]);
            clean_text(&g.description);
            Ok(())
        }),
        4 => convert(body, |b: wire::GroupMemberAdd| body_id::<UserId>("user_id", &b.user_id)),
        5 => convert(body, |b| {
            let p = policy_input(b)?;
            clean_lines(&[&p.name]);
            clean_text(&p.description);
            Ok(())
        }),
        6 => convert(body, |b| {
            let r = role_input(b)?;
            clean_lines(&[&r.name]);
            clean_text(&r.description);
            Ok(())
        }),
        7 => convert(body, trust_input),
        8 => convert(body, assume),
        9 => convert(body, |b: wire::SignInRequest| {
            b.organization_id.as_deref().map(|o| body_id::<OrgId>("organization_id", o)).transpose()
        }),
        10 => convert(body, |b: wire::SessionLimitsView| {
            Ok(SessionLimits::new(b.idle_timeout, b.absolute_timeout, b.max_sessions_per_user)?)
        }),
        11 => gateway::<Service>(body, None),
        12 => gateway::<Route>(body, None),
        13 => gateway::<Plugin>(body, None),
        14 => gateway::<Service>(body, Some(STORED_SERVICE)),
        15 => gateway::<Route>(body, Some(STORED_ROUTE)),
        16 => gateway::<Plugin>(body, Some(STORED_PLUGIN)),
        _ => {
            let _ = form_pairs(&String::from_utf8_lossy(body));
            Ok(())
        }
    };
    if let Err(e) = result {
        assert!(e.status.is_client_error(), "a body answered {} ({}): {}", e.status, e.code, e.message);
        if e.code == "invalid_request" && e.field.is_none() {
            assert!(e.message.starts_with("invalid JSON body"), "a field error without its field: {}", e.message);
        }
    }
}

/// `parse_json` then the handler's conversion.
fn convert<T: DeserializeOwned, U>(body: &[u8], f: impl FnOnce(T) -> Result<U, ApiError>) -> Result<(), ApiError> {
    let b: T = parse_json(body)?;
    f(b).map(drop)
}

/// The assume handler's conversion (`routes/assumed.rs`).
fn assume(b: wire::AssumeRequest) -> Result<(), ApiError> {
    let context_ip = b.context.and_then(|c| c.ip_address);
    match (b.ip_address, context_ip) {
        (Some(a), Some(c)) if a.trim() != c.trim() => {
            return Err(ApiError::invalid("context.ip_address", "ip_address and context.ip_address disagree"));
        }
        (Some(a), _) => drop(parse_ip("ip_address", &a)?),
        (None, Some(c)) => drop(parse_ip("context.ip_address", &c)?),
        (None, None) => {}
    }
    body_id::<UserId>("user_id", &b.user_id)?;
    body_id::<RoleId>("role_id", &b.role_id)?;
    clean_lines(&[&user::name("session_name", &b.session_name, 100)?]);
    Ok(())
}

const STORED_SERVICE: &str = r#"{"id":"6f1c2a4e-0000-4000-8000-000000000001","name":"app","protocol":"http","host":"127.0.0.1","port":8080,"path":"/base","retries":5,"connect_timeout":60000,"write_timeout":60000,"read_timeout":60000,"enabled":true,"tags":[],"created_at":1,"updated_at":1}"#;
const STORED_ROUTE: &str = r#"{"id":"6f1c2a4e-0000-4000-8000-000000000002","name":"r","paths":["/app"],"hosts":[],"methods":[],"protocols":["http","https"],"strip_path":true,"preserve_host":false,"service":{"id":"6f1c2a4e-0000-4000-8000-000000000001"},"tags":[],"created_at":1,"updated_at":1}"#;
const STORED_PLUGIN: &str = r#"{"id":"6f1c2a4e-0000-4000-8000-000000000003","name":"session","config":{"secret":"s3cret","cookie_name":"session","storage":"cookie"},"enabled":true,"route":{"id":"6f1c2a4e-0000-4000-8000-000000000002"},"created_at":1,"updated_at":1}"#;

/// The app's clock for [`gateway`] (services, routes and plugins do not depend on it).
const NOW: tessera_domain::Timestamp = tessera_domain::Timestamp(1_893_492_000);

/// The gateway routes' `body()` and the app's `parse`, `fill_secret` and stored-JSON steps:
/// a create or put when `stored` is `None`, else a patch merged onto `stored`.
fn gateway<T: GatewayResource + PartialEq + std::fmt::Debug>(
    body: &[u8],
    stored: Option<&str>,
) -> Result<(), ApiError> {
    let value: Value = parse_json(body)?;
    if !value.is_object() {
        return Err(ApiError::invalid("body", "the body must be a JSON object"));
    }
    let value = match stored {
        None => {
            let _: T = parse_json(body)?;
            value
        }
        Some(stored) => {
            let mut v: Value = serde_json::from_str(stored).expect("the stored object is JSON");
            let id = v["id"].clone();
            merge_patch(&mut v, value);
            if v.get("id").is_some_and(|given| *given != id) {
                return Err(ApiError::invalid("id", "cannot change an object's id"));
            }
            v["id"] = id;
            v
        }
    };
    check_text(&value)?;
    let mut t: T = serde_json::from_value(value).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    t.normalize(NOW)?;
    // fill_secret: the plugin's JSON with a secret set must read back as a plugin.
    let mut v = serde_json::to_value(&t).expect("a normalised object serialises");
    if v.get("config").is_some() && v["config"]["secret"].as_str().is_none_or(str::is_empty) {
        v["config"]["secret"] = Value::String("generated".into());
        t = serde_json::from_value(v).expect("a plugin with its secret set reads back");
    }
    // The stored JSON is what every node reads back (`decode`): it must give the same object.
    let stored_value = serde_json::to_value(&t).expect("a normalised object serialises");
    check_text(&stored_value).expect("a stored gateway object holds no control character");
    let text = stored_value.to_string();
    let mut again: T = serde_json::from_str(&text).expect("the stored JSON of an object reads back");
    again.normalize(NOW).expect("a stored object normalises again");
    let mut once_more = again.clone();
    once_more.normalize(NOW).expect("normalising twice");
    assert_eq!(once_more, again, "normalize is idempotent");
    if !has_float(&stored_value) {
        assert_eq!(again, t, "stored JSON round trip");
    }
    Ok(())
}

/// Characters no stored one-line text may hold: controls (CR/LF, NUL, ESC), line and
/// paragraph separators, bidi overrides and isolates (they reorder what an admin reads).
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One-line values that were accepted hold none of those.
fn clean_lines(values: &[&str]) {
    for v in values {
        assert!(!v.chars().any(unsafe_char), "accepted one-line text {v:?}");
    }
}

/// Accepted free text holds none of those but line feeds and tabs.
fn clean_text(v: &str) {
    assert!(!v.chars().any(|c| unsafe_char(c) && c != '\n' && c != '\t'), "accepted text {v:?}");
}

/// Whether a JSON value holds a fractional number, whose text form may read back one ulp
/// away (serde_json parses floats fast, not always exactly): equality is not asked of those.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(|f| f.fract() != 0.0),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}
