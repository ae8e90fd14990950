//! AWS STS compatibility: `POST /v2/assumed-roles/compatibility/aws/sts`, so AWS SDKs and
//! tools (boto3, the AWS CLI, anything with an `endpoint_url`) can assume Tessera roles.
//!
//! The request is STS's query protocol (a form: `Action`, `RoleArn`, `RoleSessionName`,
//! `DurationSeconds`, and `WebIdentityToken` or `ProviderId`); the answer is STS's XML, and so
//! are the errors (`ErrorResponse` with `Type`, `Code`, `Message`), which the SDKs parse into
//! their own exceptions. Behind it are the same two use cases as `POST
//! /v2/assumed-roles/assume`: `AssumeRole` for a Tessera credential sent as the bearer, and
//! `AssumeRoleWithWebIdentity` for a workload's OIDC token.
//!
//! What the returned credentials are (see docs/sts.md):
//! - `SessionToken` is the Tessera role-session token: send it as `Authorization: Bearer`.
//! - `AccessKeyId` is the session's id (`GET/DELETE /v2/assumed-roles/{id}`): public, not a
//!   secret, and what an administrator revokes.
//! - `SecretAccessKey` is derived from the session token (HMAC-SHA256 under a fixed label), so
//!   nothing more is stored; Tessera accepts no SigV4 signature, so it grants nothing alone.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use tessera_app::{App, AppError, AssumeInput, AssumedSession, WebIdentityAssume};
use tessera_domain::DomainError;
use tessera_domain::ids::{OidcIssuerId, OrgId, RoleId};
use tessera_domain::policy::{DocumentUse, PolicyDocument, packed_chars};
use tessera_domain::session::Session;

use crate::extract::{Authed, ClientIp, form_pairs};

/// The XML namespace every STS answer carries.
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The label `SecretAccessKey` is derived under (see the module docs).
const SECRET_LABEL: &[u8] = b"tessera sts secret access key v1";

/// One STS error: its HTTP status, `Type` (`Sender` or `Receiver`), `Code` and message.
#[derive(Debug)]
pub struct StsError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for `Retry-After` (a contended write).
    retry_after: Option<u64>,
}

impl StsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameterValue", message)
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    fn missing(name: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MissingParameter", format!("the request must contain the parameter {name}"))
    }

    /// What STS calls a refused credential, for a web-identity token or a Tessera one.
    fn from_app(e: AppError, web_identity: bool) -> Self {
        match e {
            AppError::Invalid(f) if f.field == "duration" => {
                Self::validation(format!("DurationSeconds: {}", f.message))
            }
            AppError::Invalid(f) => Self::invalid(format!("{}: {}", f.field, f.message)),
            // STS does not say whether a role exists to whom may not assume it.
            AppError::NotFound(m) | AppError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "AccessDenied", m),
            AppError::Unauthorized(m) if web_identity && m.contains("expired") => {
                Self::new(StatusCode::BAD_REQUEST, "ExpiredTokenException", m)
            }
            AppError::Unauthorized(m) if web_identity => Self::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", m),
            // STS answers 403 here; Tessera's 401 is kept, as for every credential it refuses.
            AppError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, "InvalidClientTokenId", m),
            AppError::Conflict(m) => Self::invalid(m),
            AppError::Overloaded { message, .. } => Self::new(StatusCode::BAD_REQUEST, "Throttling", message),
            AppError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the store is unavailable; retry shortly",
                )
            }
            AppError::Contended(m) => {
                tracing::warn!(error = %m, "write contended");
                Self {
                    retry_after: Some(tessera_app::CONTENDED_RETRY_AFTER_SECS),
                    ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", tessera_app::CONTENDED)
                }
            }
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "internal error")
            }
        }
    }

    fn render(self, request_id: &str) -> Response {
        let kind = if self.status.is_server_error() { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    \
             <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            self.code,
            xml_escape(&self.message),
            xml_escape(request_id),
        );
        let mut res = xml(self.status, body);
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The form fields of one STS call, by name (the last of a repeated name wins, as in STS).
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, StsError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| StsError::missing(name))
    }
}

/// `RoleArn`: `arn:aws:iam::<organization id>:role/<role id>`.
fn parse_role_arn(arn: &str) -> Result<(OrgId, RoleId), StsError> {
    let bad =
        || StsError::invalid(format!("RoleArn must be arn:aws:iam::<organization id>:role/<role id>, found '{arn}'"));
    let rest = arn.strip_prefix("arn:").ok_or_else(bad)?;
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [_partition, service, _region, account, resource] = parts.as_slice() else { return Err(bad()) };
    if *service != "iam" {
        return Err(bad());
    }
    let role = resource.strip_prefix("role/").ok_or_else(bad)?;
    // A path (`role/team/<id>`) is allowed by IAM; the id is its last segment.
    let role = role.rsplit('/').next().unwrap_or(role);
    Ok((account.parse().map_err(|_| bad())?, role.parse().map_err(|_| bad())?))
}

/// `RoleSessionName`: 2 to 64 of `[\w+=,.@-]`, as STS validates it.
fn parse_session_name(name: &str) -> Result<String, StsError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if !(2..=64).contains(&name.len()) || !name.chars().all(ok_char) {
        return Err(StsError::validation(format!(
            "RoleSessionName must be 2 to 64 characters of letters, digits and _+=,.@-, found '{name}'"
        )));
    }
    Ok(name.to_owned())
}

/// A session policy given as `Policy`, and the percentage of the bound its packed size uses
/// (STS's `PackedPolicySize`; 0 without one).
struct SessionPolicy {
    document: Option<PolicyDocument>,
    packed_percent: usize,
}

/// `Policy`: a session policy (a Tessera policy document, as JSON), bounded as on `POST
/// /v2/assumed-roles/assume`; over the size it is STS's `PackedPolicyTooLarge`.
fn sts_policy(p: &Params) -> Result<SessionPolicy, StsError> {
    let Some(text) = p.get("Policy").filter(|t| !t.is_empty()) else {
        return Ok(SessionPolicy { document: None, packed_percent: 0 });
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| StsError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", format!("Policy: {e}")))?;
    let packed_percent = DocumentUse::Session.percent_of_max(packed_chars(&value));
    let document = crate::convert::session_policy(Some(value)).map_err(|e| match e {
        DomainError::TooLarge(f) => {
            StsError::new(StatusCode::BAD_REQUEST, "PackedPolicyTooLarge", format!("Policy: {}", f.message))
        }
        DomainError::Invalid(f) => StsError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", f.to_string()),
    })?;
    Ok(SessionPolicy { document, packed_percent })
}

fn parse_duration(p: &Params) -> Result<Option<i64>, StsError> {
    p.get("DurationSeconds")
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| StsError::validation(format!("DurationSeconds must be an integer, found '{d}'")))
        })
        .transpose()
}

/// `POST /v2/assumed-roles/compatibility/aws/sts` (the form may also come as a query string).
pub async fn sts(
    State(app): State<Arc<App>>,
    ClientIp(client): ClientIp,
    uri: Uri,
    caller: Result<Authed, crate::error::ApiError>,
    body: Bytes,
) -> Response {
    let request_id = tessera_app::audit::request_id();
    let mut pairs = form_pairs(uri.query().unwrap_or(""));
    pairs.extend(form_pairs(&String::from_utf8_lossy(&body)));
    let params = Params(pairs);
    if let Err(e) = &caller
        && e.code == "cross_site_request"
    {
        // A browser's cross-site request riding on a session cookie: refused as everywhere
        // else in the API, in its shape (no SDK sends cookies).
        let e = crate::error::ApiError::new(e.status, e.code, e.message.clone());
        return e.into_response();
    }
    let answer = match params.get("Action") {
        Some("AssumeRole") => assume_role(&app, caller, &params, client).await,
        Some("AssumeRoleWithWebIdentity") => assume_role_with_web_identity(&app, &params, client).await,
        Some(other) => Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("the action {other} is not valid for this endpoint; use AssumeRole or AssumeRoleWithWebIdentity"),
        )),
        None => Err(StsError::missing("Action")),
    };
    match answer {
        Ok(granted) => xml(StatusCode::OK, granted.render(&request_id)),
        Err(e) => e.render(&request_id),
    }
}

async fn assume_role(
    app: &App,
    caller: Result<Authed, crate::error::ApiError>,
    p: &Params,
    client: Option<std::net::IpAddr>,
) -> Result<Granted, StsError> {
    let Authed(caller) = caller.map_err(|e| {
        StsError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidClientTokenId",
            format!("{} (AssumeRole takes a Tessera API key or login session as Authorization: Bearer)", e.message),
        )
    })?;
    let (org, role) = parse_role_arn(p.required("RoleArn")?)?;
    let session_name = parse_session_name(p.required("RoleSessionName")?)?;
    let duration = parse_duration(p)?;
    if org != caller.org_id {
        return Err(StsError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("the role is not in your organization ({})", caller.org_id),
        ));
    }
    let Some(user) = caller.user_id() else {
        return Err(StsError::new(StatusCode::FORBIDDEN, "AccessDenied", "only a user can call AssumeRole"));
    };
    let policy = sts_policy(p)?;
    let input = AssumeInput {
        user_id: user,
        role_id: role,
        session_name,
        auth_method: "api_key".into(),
        duration,
        ip_address: None,
        source_ip: client,
        policy: policy.document,
    };
    let assumed = app.assume_role(&caller, input).await.map_err(|e| StsError::from_app(e, false))?;
    Ok(Granted { action: "AssumeRole", assumed, org, extra: String::new(), packed_percent: policy.packed_percent })
}

async fn assume_role_with_web_identity(
    app: &App,
    p: &Params,
    client: Option<std::net::IpAddr>,
) -> Result<Granted, StsError> {
    let token = p.required("WebIdentityToken")?;
    let (org, role) = parse_role_arn(p.required("RoleArn")?)?;
    let session_name = parse_session_name(p.required("RoleSessionName")?)?;
    let duration = parse_duration(p)?;
    // STS finds the provider from the token's `iss`; Tessera names it: `ProviderId`, the OIDC
    // issuer's id, or else the one issuer the role's trusts name.
    let issuer: OidcIssuerId = match p.get("ProviderId").filter(|v| !v.is_empty()) {
        Some(id) => id.parse().map_err(|_| StsError::invalid("ProviderId must be the id of a Tessera OIDC issuer"))?,
        None => {
            app.sole_trusted_issuer(org, role).await.map_err(|e| StsError::from_app(e, true))?.ok_or_else(|| {
                StsError::missing(
                    "ProviderId (the role trusts no single OIDC issuer, so name the one that signed the token)",
                )
            })?
        }
    };
    let policy = sts_policy(p)?;
    let input = WebIdentityAssume {
        issuer_id: issuer,
        role_id: role,
        session_name,
        auth_method: "oidc".into(),
        duration,
        ip_address: None,
        source_ip: client,
        policy: policy.document,
        // An ARN naming another organization than the issuer's is refused before any session
        // exists.
        organization: Some(org),
    };
    let assumed = app.assume_role_with_web_identity(token, input).await.map_err(|e| StsError::from_app(e, true))?;
    let subject = xml_escape(assumed.session.principal.display_name());
    let extra = format!(
        "    <SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>\n    <Provider>{issuer}</Provider>\n"
    );
    Ok(Granted { action: "AssumeRoleWithWebIdentity", assumed, org, extra, packed_percent: policy.packed_percent })
}

/// A session an STS action just assumed, and what its answer adds (`extra`, already XML).
struct Granted {
    action: &'static str,
    assumed: AssumedSession,
    org: OrgId,
    extra: String,
    /// `PackedPolicySize`: the percentage of the session-policy bound its `Policy` uses.
    packed_percent: usize,
}

impl Granted {
    /// The STS answer. Every value from the request is escaped where it is written, so
    /// nothing a caller sends (a session name, a token's subject) can change the document.
    fn render(&self, request_id: &str) -> String {
        let Self { action, assumed, org, extra, packed_percent } = self;
        let s: &Session = &assumed.session;
        let role = s.role_id.map(|r| r.to_string()).unwrap_or_default();
        format!(
            "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>\n{extra}    <AssumedRoleUser>\n      \
         <Arn>arn:aws:sts::{org}:assumed-role/{role_name}/{session_name}</Arn>\n      \
         <AssumedRoleId>{role}:{session_name}</AssumedRoleId>\n    </AssumedRoleUser>\n    <Credentials>\n      \
         <AccessKeyId>{id}</AccessKeyId>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n      \
         <SessionToken>{token}</SessionToken>\n      <Expiration>{expires}</Expiration>\n    </Credentials>\n    \
         <PackedPolicySize>{packed_percent}</PackedPolicySize>\n  </{action}Result>\n  <ResponseMetadata>\n    \
         <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
            role_name = xml_escape(&s.role_name),
            session_name = xml_escape(&s.session_name),
            id = s.id,
            secret = secret_access_key(&assumed.token),
            token = xml_escape(&assumed.token),
            expires = s.expires.to_rfc3339(),
            request_id = xml_escape(request_id),
        )
    }
}

/// `SecretAccessKey`: HMAC-SHA256 of a fixed label under the session token, base64 (40
/// characters, like AWS's). Computable again from the token alone; stored nowhere.
pub fn secret_access_key(session_token: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_token.as_bytes()).expect("HMAC takes any key");
    mac.update(SECRET_LABEL);
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    b64[..40].to_owned()
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    res
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_arn_names_the_organization_and_the_role() {
        let org = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let role = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
        let (o, r) = parse_role_arn(&format!("arn:aws:iam::{org}:role/{role}")).unwrap();
        assert_eq!((o.to_string(), r.to_string()), (org.to_owned(), role.to_owned()));
        let (_, r) = parse_role_arn(&format!("arn:aws:iam::{org}:role/ci/{role}")).unwrap();
        assert_eq!(r.to_string(), role);
        for bad in [
            "",
            "arn:aws:iam::x:role/y",
            &format!("arn:aws:s3::{org}:role/{role}"),
            &format!("arn:aws:iam::{org}:user/{role}"),
        ] {
            let e = parse_role_arn(bad).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValue", "{bad}");
        }
    }

    #[test]
    fn session_names_follow_sts_rules() {
        assert!(parse_session_name("ci-job_42@repo.org").is_ok());
        assert_eq!(parse_session_name("x").unwrap_err().code, "ValidationError");
        assert_eq!(parse_session_name("has space").unwrap_err().code, "ValidationError");
        assert_eq!(parse_session_name(&"a".repeat(65)).unwrap_err().code, "ValidationError");
    }

    #[test]
    fn the_secret_access_key_is_a_stable_function_of_the_token() {
        let a = secret_access_key("tessera_rs_one");
        assert_eq!(a.len(), 40);
        assert_eq!(a, secret_access_key("tessera_rs_one"));
        assert_ne!(a, secret_access_key("tessera_rs_two"));
    }

    #[test]
    fn errors_are_sts_xml_and_escape_what_they_quote() {
        let e = StsError::invalid("bad <RoleArn> & more");
        let res = e.render("req-1");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/xml");
    }
}
