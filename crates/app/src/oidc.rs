//! Workload identity: registering OIDC issuers, keeping their keys, and assuming a role with
//! a token one of them signed (the workload becomes the session's principal).
//!
//! Keys of a discovered issuer are fetched through a [`KeyFetcher`] (the wiring gives an
//! HTTP one; the app knows no HTTP) and cached per issuer until the issuer's caching headers
//! say they expire. A token naming a `kid` the cached set lacks triggers one refetch (key
//! rotation), at most once per issuer per [`REFETCH_INTERVAL_SECS`], so a flood of tokens
//! with made-up `kid`s cannot hammer the issuer. When the issuer cannot be reached, cached
//! keys keep working until they expire; with none, the answer is a 429 with `Retry-After`
//! that names the issuer and the reason (never a 500).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tessera_domain::FieldError;
use tessera_domain::Timestamp;
use tessera_domain::audit::{ActorKind, AuditResult};
use tessera_domain::ids::{OidcIssuerId, OrgId, RoleId};
use tessera_domain::oidc::{Expected, IssuerKeys, IssuerUri, JwkSet, JwtRefusal, OidcIssuer, UnverifiedToken};
use tessera_domain::role::{RoleType, session_duration};
use tessera_domain::session::{Principal, Session, SessionKind, SessionStart};
use tessera_domain::token::{TokenKind, mint};
use tessera_domain::trust::{AssumeContext, Assumer, evaluate_trusts};
use tessera_store::audit as trail;
use tessera_store::{Page, PageRequest};

use crate::actions as act;
use crate::audit::Actor;
use crate::iam::RngRef;
use crate::{App, AppError, AppResult, AssumedSession, Caller, not_found};

/// At most one key fetch per issuer in this many seconds (whatever the tokens say).
pub const REFETCH_INTERVAL_SECS: i64 = 30;
/// How long fetched keys are kept when the issuer's answer sets no lifetime.
pub const DEFAULT_KEYS_TTL_SECS: i64 = 3_600;
/// Bounds on the lifetime an issuer may set: at least a minute (no refetch storm), at most
/// a day (a removed key stops working within a day even if the issuer said "a year").
pub const MIN_KEYS_TTL_SECS: i64 = 60;
pub const MAX_KEYS_TTL_SECS: i64 = 86_400;

/// Keys as an issuer published them, and for how long they may be kept.
#[derive(Debug, Clone)]
pub struct FetchedKeys {
    pub keys: JwkSet,
    /// Seconds, from `Cache-Control: max-age` or `Expires`; `None` when the answer set none.
    pub max_age: Option<i64>,
}

/// Fetches an issuer's keys: its discovery document, then its `jwks_uri`. The error is a
/// short reason a user may read (never a token).
#[async_trait::async_trait]
pub trait KeyFetcher: Send + Sync {
    async fn fetch(&self, issuer: &IssuerUri) -> Result<FetchedKeys, String>;
}

/// The fetcher of an app wired without one: every discovered issuer is unreachable.
struct NoFetcher;

#[async_trait::async_trait]
impl KeyFetcher for NoFetcher {
    async fn fetch(&self, _: &IssuerUri) -> Result<FetchedKeys, String> {
        Err("this server was started without an HTTP client for OIDC discovery".into())
    }
}

/// One issuer's cached keys.
#[derive(Debug, Clone)]
struct CachedKeys {
    uri: String,
    keys: Arc<JwkSet>,
    fetched: Timestamp,
    expires: Timestamp,
}

/// Per-issuer key cache and the time of the last fetch attempt (successful or not).
pub(crate) struct IssuerKeyCache {
    fetcher: Arc<dyn KeyFetcher>,
    keys: Mutex<HashMap<OidcIssuerId, CachedKeys>>,
    attempts: Mutex<HashMap<OidcIssuerId, Timestamp>>,
}

impl IssuerKeyCache {
    pub(crate) fn new() -> Self {
        Self { fetcher: Arc::new(NoFetcher), keys: Default::default(), attempts: Default::default() }
    }

    fn cached(&self, issuer: &OidcIssuer) -> Option<CachedKeys> {
        let keys = self.keys.lock().expect("key cache");
        keys.get(&issuer.id).filter(|c| c.uri == issuer.uri.as_str()).cloned()
    }

    /// Claims the right to fetch now; false when the last attempt was too recent.
    fn claim_attempt(&self, id: OidcIssuerId, now: Timestamp) -> bool {
        let mut attempts = self.attempts.lock().expect("attempt map");
        match attempts.get(&id) {
            Some(last) if now.0 < last.0 + REFETCH_INTERVAL_SECS => false,
            _ => {
                attempts.insert(id, now);
                true
            }
        }
    }

    fn forget(&self, id: OidcIssuerId) {
        self.keys.lock().expect("key cache").remove(&id);
        self.attempts.lock().expect("attempt map").remove(&id);
    }
}

/// What a new or changed issuer is made of (parsed at the edge).
#[derive(Debug, Clone)]
pub struct IssuerInput {
    pub source: String,
    pub uri: IssuerUri,
    pub keys: IssuerKeys,
}

/// An issuer with what this node knows of its keys.
#[derive(Debug, Clone)]
pub struct IssuerState {
    pub issuer: OidcIssuer,
    pub jwks_fetched_at: Option<Timestamp>,
    pub jwks_expires_at: Option<Timestamp>,
}

/// Assuming a role with an external token (Vultr's `auth_method` `oidc` or `jwt`).
#[derive(Debug, Clone)]
pub struct WebIdentityAssume {
    pub issuer_id: OidcIssuerId,
    pub role_id: RoleId,
    pub session_name: String,
    pub auth_method: String,
    pub duration: Option<i64>,
    /// When set, the session token works only from this address.
    pub ip_address: Option<IpAddr>,
    pub source_ip: Option<IpAddr>,
    /// A session policy, as for [`crate::AssumeInput::policy`].
    pub policy: Option<tessera_domain::policy::PolicyDocument>,
    /// The organization the caller means (the STS `RoleArn` names one): the issuer must
    /// belong to it, checked once the token is verified and before anything is written.
    pub organization: Option<OrgId>,
}

fn issuer_not_found() -> AppError {
    // Vultr's wording, which its Terraform provider matches on.
    AppError::NotFound("Issuer Not Found".into())
}

/// The issuer's keys are out of reach and none are cached. Answered like any bounded
/// resource (429 with `Retry-After`, STS's `Throttling`): nothing changed, and retrying after
/// the fetch interval is exactly what the caller should do. (The store's own `Unavailable`
/// is deliberately worded generically by the server, so it cannot carry this reason.)
fn keys_unavailable(issuer: &OidcIssuer, why: &str) -> AppError {
    AppError::Overloaded {
        message: format!(
            "the keys of OIDC issuer {} cannot be fetched ({why}); retry in {REFETCH_INTERVAL_SECS} seconds",
            issuer.id
        ),
        retry_after_secs: REFETCH_INTERVAL_SECS as u64,
    }
}

fn refused(r: JwtRefusal) -> AppError {
    AppError::Unauthorized(format!("web identity token refused: {r}"))
}

impl App {
    /// Fetches discovered issuers' keys with `fetcher` (the wiring's HTTP client).
    pub fn with_key_fetcher(mut self, fetcher: Arc<dyn KeyFetcher>) -> Self {
        self.issuer_keys.fetcher = fetcher;
        self
    }

    fn issuer_state(&self, issuer: OidcIssuer) -> IssuerState {
        let cached = matches!(issuer.keys, IssuerKeys::Discovered).then(|| self.issuer_keys.cached(&issuer)).flatten();
        IssuerState {
            jwks_fetched_at: cached.as_ref().map(|c| c.fetched),
            jwks_expires_at: cached.as_ref().map(|c| c.expires),
            issuer,
        }
    }

    pub async fn create_oidc_issuer(&self, caller: &Caller, input: IssuerInput) -> AppResult<IssuerState> {
        self.change(caller, act::OIDC_ISSUER_CREATE, "*", "oidc_issuer").await?;
        let issuer = OidcIssuer {
            id: self.new_id(OidcIssuerId::from_random),
            org_id: caller.org_id,
            source: input.source,
            uri: input.uri,
            keys: input.keys,
            date_created: self.now(),
        };
        trail::retarget(issuer.id);
        self.store.create_oidc_issuer(&issuer).await?;
        Ok(self.issuer_state(issuer))
    }

    pub async fn get_oidc_issuer(&self, caller: &Caller, id: OidcIssuerId) -> AppResult<IssuerState> {
        caller.authorize(act::OIDC_ISSUER_READ, &id.to_string())?;
        let issuer = self.store.get_oidc_issuer(caller.org_id, id).await?.ok_or_else(issuer_not_found)?;
        Ok(self.issuer_state(issuer))
    }

    pub async fn list_oidc_issuers(&self, caller: &Caller, page: PageRequest) -> AppResult<Page<IssuerState>> {
        caller.authorize(act::OIDC_ISSUER_LIST, "*")?;
        let page = self.store.list_oidc_issuers(caller.org_id, page).await?;
        Ok(page.map(|i| self.issuer_state(i)))
    }

    /// Replaces the issuer's source, uri and keys; cached keys of the old uri are dropped.
    pub async fn update_oidc_issuer(
        &self,
        caller: &Caller,
        id: OidcIssuerId,
        input: IssuerInput,
    ) -> AppResult<IssuerState> {
        self.change(caller, act::OIDC_ISSUER_UPDATE, &id.to_string(), "oidc_issuer").await?;
        let mut issuer = self.store.get_oidc_issuer(caller.org_id, id).await?.ok_or_else(issuer_not_found)?;
        issuer.source = input.source;
        issuer.uri = input.uri;
        issuer.keys = input.keys;
        if !self.store.update_oidc_issuer(&issuer).await? {
            return Err(issuer_not_found());
        }
        self.issuer_keys.forget(id);
        Ok(self.issuer_state(issuer))
    }

    /// Deletes the issuer and the trusts that name it; sessions its tokens made are not
    /// ended (revoke them like any other).
    pub async fn delete_oidc_issuer(&self, caller: &Caller, id: OidcIssuerId) -> AppResult<()> {
        self.change(caller, act::OIDC_ISSUER_DELETE, &id.to_string(), "oidc_issuer").await?;
        if !self.store.delete_oidc_issuer(caller.org_id, id).await? {
            return Err(issuer_not_found());
        }
        self.issuer_keys.forget(id);
        // Cached assume facts may hold trusts that named it.
        self.cache.permissions_changed();
        Ok(())
    }

    /// The keys tokens of this issuer are checked against (fetched if none are cached).
    pub async fn oidc_issuer_jwks(&self, caller: &Caller, id: OidcIssuerId) -> AppResult<JwkSet> {
        caller.authorize(act::OIDC_ISSUER_READ, &id.to_string())?;
        let issuer = self.store.get_oidc_issuer(caller.org_id, id).await?.ok_or_else(issuer_not_found)?;
        Ok((*self.keys_for(&issuer, None).await?).clone())
    }

    /// The issuer's keys for a token naming `kid`: inline keys as given; discovered keys
    /// from the cache, fetched when there are none (or they expired), refetched once when
    /// `kid` is unknown, within the rate limit.
    async fn keys_for(&self, issuer: &OidcIssuer, kid: Option<&str>) -> AppResult<Arc<JwkSet>> {
        if let IssuerKeys::Inline(set) = &issuer.keys {
            return Ok(Arc::new(set.clone()));
        }
        let now = self.now();
        let cached = self.issuer_keys.cached(issuer).filter(|c| now < c.expires);
        let stale_kid = |c: &CachedKeys| kid.is_some_and(|k| !c.keys.has_kid(k));
        match &cached {
            Some(c) if !stale_kid(c) => return Ok(Arc::clone(&c.keys)),
            _ => {}
        }
        if !self.issuer_keys.claim_attempt(issuer.id, now) {
            // Fetched moments ago: answer from what is there.
            return match cached {
                Some(c) => Ok(c.keys),
                None => Err(keys_unavailable(issuer, "the last attempt failed moments ago")),
            };
        }
        match self.issuer_keys.fetcher.fetch(&issuer.uri).await {
            Ok(fetched) => {
                let ttl = fetched.max_age.unwrap_or(DEFAULT_KEYS_TTL_SECS).clamp(MIN_KEYS_TTL_SECS, MAX_KEYS_TTL_SECS);
                let entry = CachedKeys {
                    uri: issuer.uri.as_str().to_owned(),
                    keys: Arc::new(fetched.keys),
                    fetched: now,
                    expires: now.plus_secs(ttl),
                };
                let keys = Arc::clone(&entry.keys);
                self.issuer_keys.keys.lock().expect("key cache").insert(issuer.id, entry);
                tracing::info!(issuer = %issuer.id, keys = keys.keys.len(), ttl, "fetched OIDC issuer keys");
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(issuer = %issuer.id, error = %why, "could not fetch OIDC issuer keys");
                match cached {
                    // Unreachable, but what was cached is still within its lifetime.
                    Some(c) => Ok(c.keys),
                    None => Err(keys_unavailable(issuer, &why)),
                }
            }
        }
    }

    /// Assumes a role with a token an OIDC issuer signed. The token is the credential: no
    /// Tessera key is involved, and the session's principal is the workload (issuer and
    /// `sub`). It acts with exactly the role's policies. Refusals: 401 naming the token check
    /// that failed, 403 naming the trust condition, 429 (retry after the fetch interval) when
    /// the issuer's keys are out of reach; 401 and 403 are recorded as `denied`.
    pub async fn assume_role_with_web_identity(
        &self,
        token: &str,
        input: WebIdentityAssume,
    ) -> AppResult<AssumedSession> {
        let issuer = self.store.find_oidc_issuer(input.issuer_id).await?.ok_or_else(|| {
            AppError::Unauthorized(format!("Invalid API token: no OIDC issuer {} is registered", input.issuer_id))
        })?;
        let role = input.role_id;
        let mut actor = Actor {
            kind: ActorKind::Anonymous,
            org: issuer.org_id,
            id: issuer.id.to_string(),
            email: String::new(),
            credential: String::new(),
        };
        let result = self.assume_as_workload(&issuer, token, input, &mut actor).await;
        if let Err(e @ (AppError::Unauthorized(_) | AppError::Forbidden(_))) = &result {
            let event = self
                .audit_event(actor, act::ROLE_ASSUME, "role", role, AuditResult::Denied)
                .with_reason(e.to_string().as_str());
            self.record_refusal(&event).await;
        }
        result
    }

    async fn assume_as_workload(
        &self,
        issuer: &OidcIssuer,
        token: &str,
        input: WebIdentityAssume,
        actor: &mut Actor,
    ) -> AppResult<AssumedSession> {
        let parsed = UnverifiedToken::parse(token).map_err(refused)?;
        let keys = self.keys_for(issuer, parsed.kid.as_deref()).await?;
        let now = self.now();
        let verified = parsed.verify(&keys, Expected { issuer: issuer.uri.as_str(), now }).map_err(refused)?;
        actor.email = verified.subject.clone();
        // Only once the token is verified: checked earlier, the refusal of any token would
        // tell a caller holding none whether the issuer belongs to the organization it
        // named, an oracle for the issuer's organization. Still before anything is written.
        if let Some(named) = input.organization
            && named != issuer.org_id
        {
            return Err(FieldError::new(
                "RoleArn",
                format!("names organization {named}, and the OIDC issuer belongs to another"),
            )
            .into());
        }

        let org = issuer.org_id;
        let (role, trusts) =
            tokio::join!(self.store.get_role(org, input.role_id), self.store.role_trusts(org, input.role_id));
        let role = role?.ok_or_else(|| not_found("Role"))?;
        if role.role_type != RoleType::Assumable {
            return Err(FieldError::new(
                "role_id",
                format!("role {} is assignable; only assumable roles can be assumed", role.id),
            )
            .into());
        }
        let duration = session_duration(input.duration, &role)?;
        let ctx = AssumeContext {
            who: Assumer::Workload { issuer: issuer.id, claims: &verified.claims },
            ip: input.ip_address.or(input.source_ip),
            now,
        };
        let conditions_met =
            evaluate_trusts(&trusts?, role.id, &ctx).map_err(|refusal| AppError::Forbidden(refusal.0))?;

        let secret = self.with_rng(|r| mint(TokenKind::RoleSession, &mut RngRef(r)));
        let session = Session {
            role_id: Some(role.id),
            role_name: role.name.clone(),
            session_name: input.session_name,
            bound_ip: input.ip_address,
            conditions_met,
            session_policy: input.policy,
            ..Session::start(SessionStart {
                id: self.new_session_id(),
                org_id: org,
                handle: secret.digest.handle(),
                kind: SessionKind::AssumedRole,
                principal: Principal::Workload { issuer: issuer.id, subject: verified.subject },
                auth_method: input.auth_method,
                source_ip: input.source_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default(),
                duration,
                idle_timeout: None,
                now,
            })
        };
        let event = self.audit_event(
            Actor {
                kind: actor.kind,
                org,
                id: actor.id.clone(),
                email: actor.email.clone(),
                credential: String::new(),
            },
            act::ROLE_ASSUME,
            "session",
            session.id,
            AuditResult::Success,
        );
        trail::stage(event);
        trail::reason(format!("role {} for OIDC issuer {}", role.id, issuer.id));
        self.store.create_session(&session, &secret.digest).await?;
        tracing::info!(session = %session.id, role = %role.id, issuer = %issuer.id, "role assumed by a workload");
        Ok(AssumedSession { session, token: secret.secret })
    }
}
