//! A typed client for Tessera's `/v2` API. It knows only the wire types: never the domain.
//!
//! A write the server answers `503` with the code `contended` collided with concurrent writes
//! on every attempt the server made, and was rolled back: sending it again is safe whatever
//! its method. The client does so [`CONTENDED_RETRIES`] times by default, after the answer's
//! `Retry-After` (at most [`MAX_RETRY_AFTER`]). No other answer is sent again.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tessera_api_types::gateway::GatewayObject;
use tessera_api_types::*;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {}", .body.error.message)]
    Api { status: StatusCode, body: ErrorBody },
    #[error("cannot reach the server: {0}")]
    Transport(String),
    #[error("unexpected answer ({status}): {message}")]
    Decode { status: StatusCode, message: String },
}

/// How many times a request answered `503 contended` is sent again, by default.
pub const CONTENDED_RETRIES: u32 = 2;
/// The longest `Retry-After` the client waits for; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

impl ClientError {
    /// The server rolled the write back after it collided with concurrent ones: it may be
    /// sent again as it was.
    pub fn is_contended(&self) -> bool {
        matches!(self, ClientError::Api { status, body }
            if *status == StatusCode::SERVICE_UNAVAILABLE && body.error.code == "contended")
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            ClientError::Transport(_) => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// Paging for list calls: `per_page` and the opaque cursor from `meta.links`.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub per_page: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Times a `503 contended` answer is sent again.
    contended_retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// `base` is the server's root URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, base: base.into().trim_end_matches('/').to_owned(), token, contended_retries: CONTENDED_RETRIES }
    }

    /// The same client acting with another bearer token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self { token: Some(token.into()), ..self.clone() }
    }

    /// The same client, sending a request answered `503 contended` again at most `times`
    /// times (0: never; the answer is then the caller's).
    pub fn with_contended_retries(&self, times: u32) -> Self {
        Self { contended_retries: times, ..self.clone() }
    }

    /// The same client, sending from a given local address (e.g. 127.0.0.2, to test IP rules).
    pub fn from_local_address(&self, ip: std::net::IpAddr) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .local_address(ip)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, ..self.clone() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// Sends `req`, again after a `503 contended` answer (see the crate's documentation).
    async fn send<T: DeserializeOwned>(&self, mut req: reqwest::RequestBuilder) -> ClientResult<T> {
        let mut retries = self.contended_retries;
        loop {
            // Every body this client sends is in memory, so a request can always be copied.
            let again = if retries > 0 { req.try_clone() } else { None };
            match self.send_once(req).await {
                Err((e, wait)) if e.is_contended() && again.is_some() => {
                    tokio::time::sleep(wait).await;
                    retries -= 1;
                    req = again.unwrap_or_else(|| unreachable!("checked by the guard"));
                }
                r => return r.map_err(|(e, _)| e),
            }
        }
    }

    /// One request and its answer; an error comes with the wait its `Retry-After` asks for.
    async fn send_once<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, (ClientError, Duration)> {
        let transport = |e: reqwest::Error| (ClientError::Transport(e.to_string()), Duration::ZERO);
        let res = req.send().await.map_err(transport)?;
        let status = res.status();
        let wait = retry_after(res.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
        let bytes = res.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let e = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api { status, body },
                Err(_) => ClientError::Decode { status, message: String::from_utf8_lossy(&bytes).into_owned() },
            };
            return Err((e, wait));
        }
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map_err(|e| (ClientError::Decode { status, message: e.to_string() }, wait))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        self.send(self.request(Method::GET, path)).await
    }
    async fn list<T: DeserializeOwned>(&self, path: &str, p: &ListParams) -> ClientResult<T> {
        let mut q: Vec<(&str, String)> = vec![];
        if let Some(n) = p.per_page {
            q.push(("per_page", n.to_string()));
        }
        if let Some(c) = &p.cursor {
            q.push(("cursor", c.clone()));
        }
        self.send(self.request(Method::GET, path).query(&q)).await
    }
    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send(self.request(Method::POST, path).json(body)).await
    }
    async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }
    async fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> ClientResult<T> {
        self.send(self.request(Method::PATCH, path).json(body)).await
    }
    async fn delete(&self, path: &str) -> ClientResult<()> {
        self.send::<Value>(self.request(Method::DELETE, path)).await.map(|_| ())
    }
    async fn post_empty(&self, path: &str) -> ClientResult<Value> {
        self.send(self.request(Method::POST, path)).await
    }

    /// Any request with an optional raw JSON body, answering the status and the JSON body
    /// (Null when empty). For tools and tests that need to see exactly what came back: sent
    /// once, never again.
    pub async fn raw(&self, method: Method, path: &str, body: Option<&str>) -> ClientResult<(StatusCode, Value)> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let res = req.send().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { status, message: e.to_string() })?
        };
        Ok((status, value))
    }

    pub async fn health(&self) -> ClientResult<Health> {
        self.get("/healthz").await
    }

    // ---- users ----------------------------------------------------------------------------
    pub async fn create_user(&self, b: &UserCreate) -> ClientResult<UserView> {
        self.post::<_, UserEnvelope>("/v2/users", b).await.map(|e| e.user)
    }
    pub async fn get_user(&self, id: &str) -> ClientResult<UserView> {
        self.get::<UserEnvelope>(&format!("/v2/users/{id}")).await.map(|e| e.user)
    }
    pub async fn list_users(&self, p: &ListParams) -> ClientResult<UserList> {
        self.list("/v2/users", p).await
    }
    pub async fn update_user(&self, id: &str, b: &UserUpdate) -> ClientResult<UserView> {
        self.patch::<_, UserEnvelope>(&format!("/v2/users/{id}"), b).await.map(|e| e.user)
    }
    pub async fn delete_user(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/users/{id}")).await
    }
    pub async fn create_api_key(&self, user: &str, b: &ApiKeyCreate) -> ClientResult<ApiKeyView> {
        self.post::<_, ApiKeyEnvelope>(&format!("/v2/users/{user}/apikeys"), b).await.map(|e| e.api_key)
    }
    pub async fn list_api_keys(&self, user: &str, p: &ListParams) -> ClientResult<ApiKeyList> {
        self.list(&format!("/v2/users/{user}/apikeys"), p).await
    }
    pub async fn delete_api_key(&self, user: &str, key: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/users/{user}/apikeys/{key}")).await
    }
    pub async fn list_user_policies(&self, user: &str, p: &ListParams) -> ClientResult<PolicyList> {
        self.list(&format!("/v2/users/{user}/policies"), p).await
    }

    // ---- groups ---------------------------------------------------------------------------
    pub async fn create_group(&self, b: &GroupInput) -> ClientResult<GroupView> {
        self.post::<_, GroupEnvelope>("/v2/groups", b).await.map(|e| e.group)
    }
    pub async fn get_group(&self, id: &str) -> ClientResult<GroupView> {
        self.get::<GroupEnvelope>(&format!("/v2/groups/{id}")).await.map(|e| e.group)
    }
    pub async fn list_groups(&self, p: &ListParams) -> ClientResult<GroupList> {
        self.list("/v2/groups", p).await
    }
    pub async fn update_group(&self, id: &str, b: &GroupInput) -> ClientResult<GroupView> {
        self.put::<_, GroupEnvelope>(&format!("/v2/groups/{id}"), b).await.map(|e| e.group)
    }
    pub async fn delete_group(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/groups/{id}")).await
    }
    pub async fn add_group_member(&self, group: &str, user: &str) -> ClientResult<()> {
        let b = GroupMemberAdd { user_id: user.into(), display_name: None };
        self.post::<_, Value>(&format!("/v2/groups/{group}/members"), &b).await.map(|_| ())
    }
    pub async fn remove_group_member(&self, group: &str, user: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/groups/{group}/members/{user}")).await
    }
    pub async fn list_group_members(&self, group: &str, p: &ListParams) -> ClientResult<MemberList> {
        self.list(&format!("/v2/groups/{group}/members"), p).await
    }

    // ---- policies -------------------------------------------------------------------------
    pub async fn create_policy(&self, b: &PolicyInput) -> ClientResult<PolicyView> {
        self.post::<_, PolicyEnvelope>("/v2/policies", b).await.map(|e| e.policy)
    }
    pub async fn get_policy(&self, id: &str) -> ClientResult<PolicyView> {
        self.get::<PolicyEnvelope>(&format!("/v2/policies/{id}")).await.map(|e| e.policy)
    }
    pub async fn list_policies(&self, p: &ListParams) -> ClientResult<PolicyList> {
        self.list("/v2/policies", p).await
    }
    pub async fn update_policy(&self, id: &str, b: &PolicyInput) -> ClientResult<PolicyView> {
        self.put::<_, PolicyEnvelope>(&format!("/v2/policies/{id}"), b).await.map(|e| e.policy)
    }
    pub async fn delete_policy(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/policies/{id}")).await
    }
    pub async fn attach_policy_to_user(&self, policy: &str, user: &str) -> ClientResult<()> {
        self.post_empty(&format!("/v2/policies/{policy}/users/{user}")).await.map(|_| ())
    }
    pub async fn detach_policy_from_user(&self, policy: &str, user: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/policies/{policy}/users/{user}")).await
    }
    pub async fn attach_policy_to_group(&self, policy: &str, group: &str) -> ClientResult<()> {
        self.post_empty(&format!("/v2/policies/{policy}/groups/{group}")).await.map(|_| ())
    }
    pub async fn detach_policy_from_group(&self, policy: &str, group: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/policies/{policy}/groups/{group}")).await
    }
    pub async fn list_policy_users(&self, policy: &str, p: &ListParams) -> ClientResult<UserList> {
        self.list(&format!("/v2/policies/{policy}/users"), p).await
    }
    pub async fn list_policy_groups(&self, policy: &str, p: &ListParams) -> ClientResult<GroupList> {
        self.list(&format!("/v2/policies/{policy}/groups"), p).await
    }

    // ---- roles and trusts -----------------------------------------------------------------
    pub async fn create_role(&self, b: &RoleInput) -> ClientResult<RoleView> {
        self.post::<_, RoleEnvelope>("/v2/roles", b).await.map(|e| e.role)
    }
    pub async fn get_role(&self, id: &str) -> ClientResult<RoleView> {
        self.get::<RoleEnvelope>(&format!("/v2/roles/{id}")).await.map(|e| e.role)
    }
    pub async fn list_roles(&self, p: &ListParams) -> ClientResult<RoleList> {
        self.list("/v2/roles", p).await
    }
    pub async fn update_role(&self, id: &str, b: &RoleInput) -> ClientResult<RoleView> {
        self.put::<_, RoleEnvelope>(&format!("/v2/roles/{id}"), b).await.map(|e| e.role)
    }
    pub async fn delete_role(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/roles/{id}")).await
    }
    pub async fn attach_policy_to_role(&self, role: &str, policy: &str) -> ClientResult<()> {
        self.post_empty(&format!("/v2/roles/{role}/policies/{policy}")).await.map(|_| ())
    }
    pub async fn detach_policy_from_role(&self, role: &str, policy: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/roles/{role}/policies/{policy}")).await
    }
    pub async fn list_role_policies(&self, role: &str, p: &ListParams) -> ClientResult<PolicyList> {
        self.list(&format!("/v2/roles/{role}/policies"), p).await
    }
    /// Assigns an assignable role to `users/{id}` or `groups/{id}` (idempotent `PUT`).
    pub async fn assign_role(&self, role: &str, assignee: &str) -> ClientResult<assignments::RoleAssignmentView> {
        let path = format!("/v2/roles/{role}/{assignee}");
        self.send::<assignments::RoleAssignmentEnvelope>(self.request(Method::PUT, &path)).await.map(|e| e.assignment)
    }
    /// Takes an assigned role back from `users/{id}` or `groups/{id}`.
    pub async fn unassign_role(&self, role: &str, assignee: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/roles/{role}/{assignee}")).await
    }
    pub async fn create_trust(&self, b: &TrustInput) -> ClientResult<TrustView> {
        self.post::<_, TrustEnvelope>("/v2/role-trusts", b).await.map(|e| e.role_trust)
    }
    pub async fn get_trust(&self, id: &str) -> ClientResult<TrustView> {
        self.get::<TrustEnvelope>(&format!("/v2/role-trusts/{id}")).await.map(|e| e.role_trust)
    }
    pub async fn list_trusts(&self, p: &ListParams) -> ClientResult<TrustList> {
        self.list("/v2/role-trusts", p).await
    }
    pub async fn list_trusts_by_role(&self, role: &str, p: &ListParams) -> ClientResult<TrustList> {
        self.list(&format!("/v2/role-trusts/by-role/{role}"), p).await
    }
    pub async fn update_trust(&self, id: &str, b: &TrustInput) -> ClientResult<TrustView> {
        self.put::<_, TrustEnvelope>(&format!("/v2/role-trusts/{id}"), b).await.map(|e| e.role_trust)
    }
    pub async fn delete_trust(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/role-trusts/{id}")).await
    }

    // ---- OIDC issuers ---------------------------------------------------------------------
    /// Registers an issuer; the answer is the issuer itself (unwrapped, as govultr reads it).
    pub async fn create_oidc_issuer(&self, b: &oidc::IssuerInput) -> ClientResult<oidc::IssuerView> {
        self.post::<_, oidc::IssuerView>("/v2/oidc/issuer", b).await
    }
    pub async fn get_oidc_issuer(&self, id: &str) -> ClientResult<oidc::IssuerView> {
        self.get::<oidc::IssuerEnvelope>(&format!("/v2/oidc/issuer/{id}")).await.map(|e| e.issuer)
    }
    pub async fn list_oidc_issuers(&self, p: &ListParams) -> ClientResult<oidc::IssuerList> {
        self.list("/v2/oidc/issuer", p).await
    }
    pub async fn update_oidc_issuer(&self, id: &str, b: &oidc::IssuerInput) -> ClientResult<oidc::IssuerView> {
        self.patch::<_, oidc::IssuerEnvelope>(&format!("/v2/oidc/issuer/{id}"), b).await.map(|e| e.issuer)
    }
    pub async fn delete_oidc_issuer(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/oidc/issuer/{id}")).await
    }
    pub async fn oidc_issuer_jwks(&self, id: &str) -> ClientResult<oidc::Jwks> {
        self.get::<oidc::Jwks>(&format!("/v2/oidc/issuer/{id}/jwks")).await
    }

    // ---- assumed roles --------------------------------------------------------------------
    pub async fn assume_role(&self, b: &AssumeRequest) -> ClientResult<AssumedRoleView> {
        self.post::<_, AssumedRoleEnvelope>("/v2/assumed-roles/assume", b).await.map(|e| e.assumed_role_session)
    }
    pub async fn get_assumed_role(&self, id: &str) -> ClientResult<AssumedRoleView> {
        self.get::<AssumedRoleEnvelope>(&format!("/v2/assumed-roles/{id}")).await.map(|e| e.assumed_role_session)
    }
    pub async fn revoke_assumed_role(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/assumed-roles/{id}")).await
    }
    pub async fn list_user_assumed_roles(&self, user: &str, p: &ListParams) -> ClientResult<AssumedRoleList> {
        self.list(&format!("/v2/assumed-roles/users/{user}/sessions"), p).await
    }

    // ---- login sessions -------------------------------------------------------------------
    /// Signs in; the answer carries the session token (use it with [`Client::with_token`]).
    pub async fn sign_in(&self, b: &SignInRequest) -> ClientResult<SignInResponse> {
        self.post("/v2/sessions", b).await
    }
    pub async fn current_session(&self) -> ClientResult<IamSessionView> {
        self.get::<SessionEnvelope>("/v2/sessions/current").await.map(|e| e.session)
    }
    pub async fn sign_out(&self) -> ClientResult<()> {
        self.delete("/v2/sessions/current").await
    }
    pub async fn get_session(&self, moid: &str) -> ClientResult<IamSessionView> {
        self.get::<SessionEnvelope>(&format!("/v2/iam/sessions/{moid}")).await.map(|e| e.session)
    }
    pub async fn terminate_session(&self, moid: &str) -> ClientResult<IamSessionView> {
        self.send::<SessionEnvelope>(self.request(Method::DELETE, &format!("/v2/iam/sessions/{moid}")))
            .await
            .map(|e| e.session)
    }
    pub async fn terminate_user_sessions(&self, user: &str) -> ClientResult<u64> {
        self.send::<TerminatedCount>(self.request(Method::DELETE, &format!("/v2/users/{user}/sessions")))
            .await
            .map(|t| t.terminated)
    }
    /// `GET /v2/iam/sessions` with OData options, e.g. `[("$filter", "status eq 'Active'")]`.
    pub async fn query_sessions(&self, options: &[(&str, &str)]) -> ClientResult<SessionQueryResponse> {
        self.send(self.request(Method::GET, "/v2/iam/sessions").query(options)).await
    }
    pub async fn get_session_limits(&self) -> ClientResult<SessionLimitsView> {
        self.get::<SessionLimitsEnvelope>("/v2/iam/session-limits").await.map(|e| e.session_limits)
    }
    pub async fn put_session_limits(&self, b: &SessionLimitsView) -> ClientResult<SessionLimitsView> {
        self.put::<_, SessionLimitsEnvelope>("/v2/iam/session-limits", b).await.map(|e| e.session_limits)
    }
    pub async fn get_login_lock(&self, user: &str) -> ClientResult<LoginLockView> {
        self.get::<LoginLockEnvelope>(&format!("/v2/users/{user}/login-lock")).await.map(|e| e.login_lock)
    }
    pub async fn clear_login_lock(&self, user: &str) -> ClientResult<()> {
        self.delete(&format!("/v2/users/{user}/login-lock")).await
    }
    // ---- the gateway's services, routes and plugins ---------------------------------------
    // One set of methods for the three kinds: `c.create_gateway::<Service>(&request)`.

    pub async fn create_gateway<T: GatewayObject>(&self, b: &T::Request) -> ClientResult<T> {
        self.post::<_, T::One>(T::PATH, b).await.map(Into::into)
    }
    pub async fn get_gateway<T: GatewayObject>(&self, id: &str) -> ClientResult<T> {
        self.get::<T::One>(&format!("{}/{id}", T::PATH)).await.map(Into::into)
    }
    /// Every object of the kind (the gateway's lists are one page).
    pub async fn list_gateway<T: GatewayObject>(&self) -> ClientResult<Vec<T>> {
        self.get::<T::List>(T::PATH).await.map(Into::into)
    }
    /// Replaces the object: fields left out take their defaults (a plugin keeps its secret).
    pub async fn replace_gateway<T: GatewayObject>(&self, id: &str, b: &T::Request) -> ClientResult<T> {
        self.put::<_, T::One>(&format!("{}/{id}", T::PATH), b).await.map(Into::into)
    }
    /// Changes only the fields `b` sets.
    pub async fn patch_gateway<T: GatewayObject>(&self, id: &str, b: &T::Request) -> ClientResult<T> {
        self.patch::<_, T::One>(&format!("{}/{id}", T::PATH), b).await.map(Into::into)
    }
    pub async fn delete_gateway<T: GatewayObject>(&self, id: &str) -> ClientResult<()> {
        self.delete(&format!("{}/{id}", T::PATH)).await
    }

    /// RFC 7662 introspection of `token`, asked with this client's credentials.
    pub async fn introspect(&self, token: &str) -> ClientResult<IntrospectionResponse> {
        self.send(self.request(Method::POST, "/v2/oauth2/introspect").form(&[("token", token)])).await
    }
}

/// The wait a `Retry-After` asks for: its seconds, at most [`MAX_RETRY_AFTER`]; a second when
/// it is missing or is a date (the server always sends seconds).
fn retry_after(value: Option<&str>) -> Duration {
    let secs = value.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
    Duration::from_secs(secs).min(MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_up_to_five_seconds() {
        assert_eq!(retry_after(Some("0")), Duration::ZERO);
        assert_eq!(retry_after(Some("1")), Duration::from_secs(1));
        assert_eq!(retry_after(Some("3600")), MAX_RETRY_AFTER);
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), Duration::from_secs(1));
        assert_eq!(retry_after(None), Duration::from_secs(1));
    }
}
