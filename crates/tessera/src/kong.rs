//! Kong's declarative configuration (a decK file, YAML or JSON, `_format_version` at the top)
//! turned into what `tessera gateway apply` applies: consumers become users that keep their
//! ids, services with their nested routes and plugins become the flat lists, references by
//! name stay names. Pure: no I/O here.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

/// Reads a configuration file's text: JSON, or else YAML (decK writes YAML by default).
pub fn parse(text: &str) -> anyhow::Result<Value> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_norway::from_str::<Value>(text)
            .map_err(|yaml_err| anyhow::anyhow!("neither JSON ({json_err}) nor YAML ({yaml_err})")),
    }
}

/// Whether a parsed file is Kong's (decK's) format rather than Tessera's.
pub fn is_kong(v: &Value) -> bool {
    v.get("_format_version").is_some()
}

/// A Kong consumer, as a Tessera user to create (or find) with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub id: String,
    pub email: String,
    pub first_name: String,
}

/// What a decK file asks for, in Tessera's terms.
#[derive(Debug, Default)]
pub struct Converted {
    pub consumers: Vec<Consumer>,
    /// `{"ca_certificates": [...], "services": [...], "routes": [...], "plugins": [...]}` as
    /// `gateway apply` reads it.
    pub gateway: Value,
    /// What was left out, and why (plugins other than `session`), for the report.
    pub skipped: Vec<Value>,
}

/// Kong fields that have no meaning in Tessera and are dropped when unset or at Kong's
/// default; any other value of them is refused (the behaviour would differ).
const SERVICE_DROPPED: &[&str] = &["client_certificate"];
const ROUTE_DROPPED: &[&str] = &["path_handling", "request_buffering", "response_buffering", "sources", "destinations"];

fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A consumer's email: its username or custom_id when one is an address, else a stand-in
/// under `kong.invalid` (a reserved domain: no mail goes there) named after it.
fn consumer_email(username: Option<&str>, custom_id: Option<&str>, id: &str) -> String {
    let looks_like_email = |s: &&str| {
        let parts: Vec<&str> = s.split('@').collect();
        parts.len() == 2 && !parts[0].is_empty() && parts[1].contains('.') && !s.contains(char::is_whitespace)
    };
    if let Some(e) = username.filter(looks_like_email).or_else(|| custom_id.filter(looks_like_email)) {
        return e.to_ascii_lowercase();
    }
    let local: String = username
        .or(custom_id)
        .unwrap_or(id)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let local = local.trim_matches(['.', '-']);
    format!("{}@kong.invalid", if local.is_empty() { id } else { local })
}

/// A reference as decK writes it (`service: api`, `{name: api}` or `{id: ...}`), as the
/// apply file writes it: `{"name": ...}` or `{"id": ...}`.
fn reference(v: &Value, at: &str) -> anyhow::Result<Value> {
    match v {
        Value::String(name) => Ok(json!({ "name": name })),
        Value::Object(m) if m.get("name").is_some_and(Value::is_string) => Ok(json!({ "name": m["name"] })),
        Value::Object(m) if m.get("id").is_some_and(Value::is_string) => Ok(json!({ "id": m["id"] })),
        _ => bail!("{at}: a reference must be a name or {{\"name\"}} / {{\"id\"}}"),
    }
}

/// Drops `dropped` fields that are unset; refuses them set.
fn drop_unused(obj: &mut Map<String, Value>, dropped: &[&str], at: &str) -> anyhow::Result<()> {
    for f in dropped {
        match obj.remove(*f) {
            Some(v) if !(is_unset(&v) || *f == "path_handling" || f.ends_with("_buffering")) => {
                bail!("{at}.{f}: not supported by Tessera's gateway (it is {v})")
            }
            _ => {}
        }
    }
    Ok(())
}

/// Converts a decK file. References between objects stay by name (decK's own way); objects
/// without a name get one from their Kong id, so that applying the file again finds them.
pub fn convert(kong: &Value) -> anyhow::Result<Converted> {
    let mut out = Converted::default();
    for (i, c) in kong["consumers"].as_array().into_iter().flatten().enumerate() {
        let at = format!("consumers[{i}]");
        let id = c["id"].as_str().with_context(|| format!("{at}.id: required, to keep the consumer's sessions"))?;
        let username = c["username"].as_str();
        let custom_id = c["custom_id"].as_str();
        out.consumers.push(Consumer {
            id: id.to_owned(),
            email: consumer_email(username, custom_id, id),
            first_name: username.or(custom_id).unwrap_or("").chars().take(100).collect(),
        });
    }
    let (mut services, mut routes, mut plugins) = (vec![], vec![], vec![]);
    for (i, s) in kong["services"].as_array().into_iter().flatten().enumerate() {
        let at = format!("services[{i}]");
        let mut s = s.as_object().cloned().with_context(|| format!("{at}: must be an object"))?;
        let name = named(&mut s, "service", &at)?;
        for (j, r) in s.remove("routes").and_then(|r| r.as_array().cloned()).unwrap_or_default().into_iter().enumerate()
        {
            let at = format!("{at}.routes[{j}]");
            let mut r = r.as_object().cloned().with_context(|| format!("{at}: must be an object"))?;
            let route_name = named(&mut r, "route", &at)?;
            for (k, p) in
                r.remove("plugins").and_then(|p| p.as_array().cloned()).unwrap_or_default().into_iter().enumerate()
            {
                plugin(
                    &mut out,
                    &mut plugins,
                    p,
                    Some(json!({ "name": route_name })),
                    None,
                    &format!("{at}.plugins[{k}]"),
                )?;
            }
            r.insert("service".into(), json!({ "name": name }));
            drop_unused(&mut r, ROUTE_DROPPED, &at)?;
            routes.push(Value::Object(r));
        }
        for (k, p) in
            s.remove("plugins").and_then(|p| p.as_array().cloned()).unwrap_or_default().into_iter().enumerate()
        {
            plugin(&mut out, &mut plugins, p, None, Some(json!({ "name": name })), &format!("{at}.plugins[{k}]"))?;
        }
        drop_unused(&mut s, SERVICE_DROPPED, &at)?;
        services.push(Value::Object(s));
    }
    for (i, r) in kong["routes"].as_array().into_iter().flatten().enumerate() {
        let at = format!("routes[{i}]");
        let mut r = r.as_object().cloned().with_context(|| format!("{at}: must be an object"))?;
        let route_name = named(&mut r, "route", &at)?;
        for (k, p) in
            r.remove("plugins").and_then(|p| p.as_array().cloned()).unwrap_or_default().into_iter().enumerate()
        {
            plugin(
                &mut out,
                &mut plugins,
                p,
                Some(json!({ "name": route_name })),
                None,
                &format!("{at}.plugins[{k}]"),
            )?;
        }
        let service = r.get("service").with_context(|| format!("{at}.service: required"))?;
        let service = reference(service, &format!("{at}.service"))?;
        r.insert("service".into(), service);
        drop_unused(&mut r, ROUTE_DROPPED, &at)?;
        routes.push(Value::Object(r));
    }
    for (i, p) in kong["plugins"].as_array().into_iter().flatten().enumerate() {
        plugin(&mut out, &mut plugins, p.clone(), None, None, &format!("plugins[{i}]"))?;
    }
    // CA certificates keep their Kong ids (services name them by id) and fields.
    let mut cas = vec![];
    for (i, ca) in kong["ca_certificates"].as_array().into_iter().flatten().enumerate() {
        let at = format!("ca_certificates[{i}]");
        let mut ca = ca.as_object().cloned().with_context(|| format!("{at}: must be an object"))?;
        ca.retain(|k, _| ["id", "cert", "cert_digest", "tags"].contains(&k.as_str()));
        ca.get("cert").and_then(Value::as_str).with_context(|| format!("{at}.cert: required (PEM)"))?;
        cas.push(Value::Object(ca));
    }
    out.gateway = json!({ "ca_certificates": cas, "services": services, "routes": routes, "plugins": plugins });
    Ok(out)
}

/// The object's name, given one from its Kong id when it has none.
fn named(obj: &mut Map<String, Value>, kind: &str, at: &str) -> anyhow::Result<String> {
    if let Some(n) = obj.get("name").and_then(Value::as_str) {
        return Ok(n.to_owned());
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .with_context(|| format!("{at}: a {kind} needs a name or an id to be matched on the next apply"))?;
    let name = format!("kong-{id}");
    obj.insert("name".into(), Value::String(name.clone()));
    Ok(name)
}

/// One plugin: `session` plugins are kept (scoped to `route`/`service` when nested), any
/// other is reported as skipped.
fn plugin(
    out: &mut Converted,
    plugins: &mut Vec<Value>,
    p: Value,
    route: Option<Value>,
    service: Option<Value>,
    at: &str,
) -> anyhow::Result<()> {
    let mut p = p.as_object().cloned().with_context(|| format!("{at}: must be an object"))?;
    let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    if name != "session" {
        out.skipped.push(json!({"kind": "plugin", "name": name, "change": "skipped",
            "id": p.get("id").cloned().unwrap_or(Value::Null), "reason": format!("{at}: only the session plugin exists in Tessera")}));
        return Ok(());
    }
    if p.get("consumer").is_some_and(|c| !c.is_null()) {
        bail!("{at}.consumer: a session plugin cannot be scoped to a consumer");
    }
    p.remove("consumer");
    if let Some(r) = route {
        p.insert("route".into(), r);
    } else if let Some(r) = p.get("route").filter(|r| !r.is_null()).cloned() {
        p.insert("route".into(), reference(&r, &format!("{at}.route"))?);
    }
    if let Some(s) = service {
        p.insert("service".into(), s);
    } else if let Some(s) = p.get("service").filter(|s| !s.is_null()).cloned() {
        p.insert("service".into(), reference(&s, &format!("{at}.service"))?);
    }
    if p.get("instance_name").is_none_or(Value::is_null) {
        // Matched by instance_name on the next apply: the Kong id, or the scope.
        let scope = [p.get("route"), p.get("service")]
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").or_else(|| r.get("id")).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("-");
        let instance = match p.get("id").and_then(Value::as_str) {
            Some(id) => format!("kong-{id}"),
            None if scope.is_empty() => "kong-session".to_owned(),
            None => format!("kong-session-{scope}"),
        };
        p.insert("instance_name".into(), Value::String(instance.chars().take(128).collect()));
    }
    plugins.push(Value::Object(p));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECK: &str = r#"
_format_version: "3.0"
ca_certificates:
- id: 9d1e2f3a-4b5c-4d6e-8f7a-0b1c2d3e4f5a
  cert: "-----BEGIN CERTIFICATE-----"
  cert_digest: abc
  created_at: 1
consumers:
- id: 3f9a1c2e-8b7d-4e6f-9a0b-1c2d3e4f5a6b
  username: alice@example.com
- id: 5e8d9c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b
  username: bob the builder
  custom_id: B-17
services:
- name: app
  url: http://127.0.0.1:9000
  tls_verify_depth: null
  routes:
  - name: web
    paths: ["~/app/\\d+$", /app]
    path_handling: v0
    request_buffering: true
    plugins:
    - name: session
      config: {secret: s3cret, cookie_secure: false}
  plugins:
  - name: rate-limiting
    config: {minute: 5}
routes:
- id: 0a0a0a0a-0000-4000-8000-000000000001
  paths: [/other]
  service: app
plugins:
- name: session
  id: 11111111-2222-4333-8444-555555555555
  config: {secret: global}
"#;

    #[test]
    fn a_deck_file_becomes_users_and_flat_gateway_objects() {
        let v = parse(DECK).unwrap();
        assert!(is_kong(&v));
        let c = convert(&v).unwrap();
        assert_eq!(c.consumers[0].email, "alice@example.com");
        assert_eq!(c.consumers[1].email, "bob-the-builder@kong.invalid");
        assert_eq!(c.consumers[1].id, "5e8d9c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b");
        let g = &c.gateway;
        assert_eq!(g["services"][0]["name"], "app");
        assert!(g["services"][0].get("routes").is_none());
        assert_eq!(g["services"][0]["tls_verify_depth"], Value::Null, "kept, as Kong's unset");
        assert_eq!(g["routes"][0]["service"], json!({"name": "app"}));
        assert_eq!(
            g["ca_certificates"],
            json!([{"id": "9d1e2f3a-4b5c-4d6e-8f7a-0b1c2d3e4f5a", "cert": "-----BEGIN CERTIFICATE-----", "cert_digest": "abc"}])
        );
        assert!(g["routes"][0].get("path_handling").is_none());
        assert_eq!(g["routes"][1]["name"], "kong-0a0a0a0a-0000-4000-8000-000000000001");
        assert_eq!(g["routes"][1]["service"], json!({"name": "app"}));
        assert_eq!(g["plugins"][0]["route"], json!({"name": "web"}));
        assert_eq!(g["plugins"][0]["instance_name"], "kong-session-web");
        assert_eq!(g["plugins"][1]["instance_name"], "kong-11111111-2222-4333-8444-555555555555");
        assert_eq!(c.skipped[0]["name"], "rate-limiting");
        // JSON reads the same.
        assert_eq!(parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn what_tessera_cannot_do_is_refused_with_where() {
        let v = parse("_format_version: '3.0'\nconsumers: [{username: x}]").unwrap();
        assert!(convert(&v).unwrap_err().to_string().starts_with("consumers[0].id"));
        let v = parse("_format_version: '3.0'\nservices: [{name: a, url: 'http://x', client_certificate: {id: c}}]")
            .unwrap();
        assert!(convert(&v).unwrap_err().to_string().starts_with("services[0].client_certificate"));
        assert!(parse("{not: [valid").is_err());
    }
}
