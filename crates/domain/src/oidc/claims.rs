//! A trust's `oidc_claims` conditions: claim → exact value, glob (`*` matches any run of
//! characters), or a list of either (any may match).
//!
//! Vultr's trusts cannot pin `sub`, so a trust to a cluster's issuer covers every service
//! account in it. Ours must: a trust to an OIDC issuer names both `aud` and `sub` (see
//! [`OidcClaims::require_audience_and_subject`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::FieldError;

/// One accepted value of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPattern {
    Exact(String),
    /// Contains at least one `*`.
    Glob(String),
}

impl ClaimPattern {
    pub fn parse(s: &str) -> ClaimPattern {
        if s.contains('*') { Self::Glob(s.to_owned()) } else { Self::Exact(s.to_owned()) }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(s) | Self::Glob(s) => s,
        }
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(s) => s == value,
            Self::Glob(g) => glob(g, value),
        }
    }

    /// A pattern that admits every value constrains nothing.
    fn admits_anything(&self) -> bool {
        matches!(self, Self::Glob(g) if g.chars().all(|c| c == '*'))
    }
}

/// `*` matches any run of characters (including none); every other character itself.
fn glob(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = value.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Claim name → the values it may take (any one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcClaims(pub BTreeMap<String, Vec<ClaimPattern>>);

impl OidcClaims {
    /// Parses `{"sub": "repo:acme/*", "aud": ["tessera", "sts"]}` at `field`.
    pub fn parse(v: &Value, field: &str) -> Result<OidcClaims, FieldError> {
        let obj = v.as_object().ok_or_else(|| FieldError::new(field, "must be an object of claim → value"))?;
        let mut out = BTreeMap::new();
        for (claim, value) in obj {
            let at = format!("{field}.{claim}");
            let patterns = match value {
                Value::String(s) => vec![ClaimPattern::parse(s)],
                Value::Array(a) if !a.is_empty() => a
                    .iter()
                    .map(|x| x.as_str().map(ClaimPattern::parse))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| FieldError::new(&at, "a list of values must hold strings only"))?,
                _ => return Err(FieldError::new(&at, "must be a string or a non-empty list of strings")),
            };
            if claim.is_empty() {
                return Err(FieldError::new(field, "a claim name must not be empty"));
            }
            out.insert(claim.clone(), patterns);
        }
        Ok(OidcClaims(out))
    }

    pub fn to_json(&self) -> Value {
        let obj: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, ps)| {
                let v = match ps.as_slice() {
                    [one] => Value::String(one.as_str().to_owned()),
                    many => many.iter().map(|p| Value::String(p.as_str().to_owned())).collect(),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(obj)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A trust to an OIDC issuer must pin the audience (tokens minted for another service
    /// must not work here) and the subject (one workload, or a named family of them).
    pub fn require_audience_and_subject(&self, field: &str) -> Result<(), FieldError> {
        for claim in ["aud", "sub"] {
            match self.0.get(claim) {
                None => {
                    return Err(FieldError::new(
                        format!("{field}.{claim}"),
                        format!(
                            "a trust to an OIDC issuer must constrain '{claim}'; without it every token the issuer \
                             mints for any {} could assume the role",
                            if claim == "aud" { "audience" } else { "workload" }
                        ),
                    ));
                }
                Some(ps) if ps.iter().any(ClaimPattern::admits_anything) => {
                    return Err(FieldError::new(
                        format!("{field}.{claim}"),
                        format!("'{claim}' must not be a bare '*': it would admit every value"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks every condition against the token's claims; the refusal names the claim.
    pub fn check(&self, claims: &Map<String, Value>) -> Result<(), String> {
        for (name, patterns) in &self.0 {
            let Some(value) = claims.get(name) else {
                return Err(format!("condition oidc_claims.{name} not met: the token has no '{name}' claim"));
            };
            let values = claim_values(value);
            if !values.iter().any(|v| patterns.iter().any(|p| p.matches(v))) {
                let want: Vec<&str> = patterns.iter().map(ClaimPattern::as_str).collect();
                return Err(format!(
                    "condition oidc_claims.{name} not met: {} does not match [{}]",
                    shown(&values),
                    want.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A claim's values as text: a string, a number or a boolean, or each element of a list
/// (`aud` may be either).
fn claim_values(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(a) => a.iter().filter(|x| !x.is_array()).flat_map(claim_values).collect(),
        _ => vec![],
    }
}

/// Claim values for a refusal message, shortened: claims are not secrets, but a message is
/// no place for a kilobyte of them.
fn shown(values: &[String]) -> String {
    let mut s: String = values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ");
    if s.len() > 200 {
        let cut = (0..=200).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    if s.is_empty() { "(no value)".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_runs_of_characters() {
        let p = |s| ClaimPattern::parse(s);
        assert!(p("repo:acme/*").matches("repo:acme/api:ref:refs/heads/main"));
        assert!(!p("repo:acme/*").matches("repo:acme-evil/api"));
        assert!(p("system:serviceaccount:*:builder").matches("system:serviceaccount:ci:builder"));
        assert!(!p("system:serviceaccount:*:builder").matches("system:serviceaccount:ci:builder2"));
        assert!(p("a*b*c").matches("abc") && p("a*b*c").matches("axxbyyc") && !p("a*b*c").matches("acb"));
        assert!(p("*").matches("") && p("ab*").matches("ab"));
        assert!(!p("exact").matches("exactly") && p("exact").matches("exact"));
        assert!(!p("*aa").matches("a"));
    }

    #[test]
    fn conditions_match_strings_lists_and_arrays() {
        let c = OidcClaims::parse(&json!({"aud": "tessera", "sub": ["repo:acme/*", "deploy"]}), "c").unwrap();
        c.require_audience_and_subject("c").unwrap();
        let ok = json!({"aud": ["other", "tessera"], "sub": "repo:acme/api"});
        assert_eq!(c.check(ok.as_object().unwrap()), Ok(()));
        let bad = json!({"aud": "tessera", "sub": "repo:evil/api"});
        let why = c.check(bad.as_object().unwrap()).unwrap_err();
        assert!(why.contains("oidc_claims.sub not met: 'repo:evil/api' does not match [repo:acme/*, deploy]"), "{why}");
        let missing = json!({"sub": "deploy"});
        assert!(c.check(missing.as_object().unwrap()).unwrap_err().contains("no 'aud' claim"));
        assert_eq!(c.to_json(), json!({"aud": "tessera", "sub": ["repo:acme/*", "deploy"]}));
    }

    #[test]
    fn a_trust_must_pin_audience_and_subject() {
        let no_sub = OidcClaims::parse(&json!({"aud": "tessera"}), "conditions.oidc_claims").unwrap();
        let e = no_sub.require_audience_and_subject("conditions.oidc_claims").unwrap_err();
        assert_eq!(e.field, "conditions.oidc_claims.sub");
        let star = OidcClaims::parse(&json!({"aud": "tessera", "sub": ["x", "**"]}), "c").unwrap();
        assert!(star.require_audience_and_subject("c").unwrap_err().message.contains("bare '*'"));
        assert!(OidcClaims::parse(&json!({"aud": 3}), "c").is_err());
        assert!(OidcClaims::parse(&json!({"aud": []}), "c").is_err());
    }
}
