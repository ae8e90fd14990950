//! Authentication and authorization: the hot path of every request.
//!
//! A bearer token is hashed once, then resolved through an in-memory cache; only a miss
//! costs one indexed read. Permissions are cached per user or role and tagged with an epoch
//! that every change to policies, attachments or memberships bumps, so a change is seen by
//! the next request without any per-request store write. Ended sessions are remembered in a
//! small set so revocation is visible at once on this node.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tessera_domain::Timestamp;
use tessera_domain::ids::{ApiKeyId, OrgId, RoleId, SessionId, UserId};
use tessera_domain::policy::{Decision, PermissionSet};
use tessera_domain::session::{EndReason, Lifetime, Liveness, Principal, Session, SessionKind};
use tessera_domain::token::{TokenDigest, TokenKind};
use tessera_domain::user::UserStatus;
use tessera_store::Credential;

use crate::{App, AppError, AppResult};

/// The maps every authenticated request reads. Their keys are token digests and ids; only
/// valid credentials are stored, so a client cannot choose what fills them. ahash with
/// per-process random keys instead of std's SipHash: 376 fewer instructions per `auth/check`
/// (−1.3 %), 1 415 per introspection (two credentials, −3.6 %).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    ApiKey(ApiKeyId),
    /// Acts with exactly the role's policies, nothing of the user's own.
    RoleSession {
        session: SessionId,
        role: RoleId,
    },
    LoginSession(SessionId),
}

/// An authenticated caller with its effective permissions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: OrgId,
    pub kind: CallerKind,
    pub permissions: Arc<PermissionSet>,
    /// The cache entry the caller was authenticated from: what "who is this?" answers from.
    pub(crate) credential: CredentialRef,
}

/// The cache entry behind a [`Caller`] (opaque; `Debug` names only its kind).
#[derive(Clone)]
pub(crate) struct CredentialRef(Arc<CachedCredential>);

impl std::fmt::Debug for CredentialRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.kind {
            CachedKind::ApiKey { .. } => "CredentialRef(api key)",
            CachedKind::Session { .. } => "CredentialRef(session)",
        })
    }
}

impl Caller {
    /// Whom the credential speaks for: a user, or (through a role session assumed with an
    /// OIDC token) a workload. Read from the credential's cache entry, not copied per request.
    pub fn principal(&self) -> &Principal {
        &self.credential.0.principal
    }

    /// The user behind the credential; `None` for a workload.
    pub fn user_id(&self) -> Option<UserId> {
        self.principal().user_id()
    }

    /// The user's email, or the workload's subject.
    pub fn display_name(&self) -> &str {
        self.principal().display_name()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PermKey {
    User(OrgId, UserId),
    Role(OrgId, RoleId),
}

/// Credentials unused this long leave the cache (the next use costs one indexed read).
const CREDENTIAL_IDLE: std::time::Duration = std::time::Duration::from_secs(600);
const CREDENTIAL_SHARDS: usize = 32;

/// Bounded sharded maps for the caches every authenticated request reads: a read is one
/// shard's read lock and a hash lookup, with no bookkeeping (a general-purpose cache records
/// every read for its eviction policy, which cost several times the lookup). A full shard
/// drops an arbitrary tenth of its entries; their next use reads the store again.
struct Shards<K, V> {
    shards: Vec<std::sync::RwLock<HashMap<K, V>>>,
    per_shard: usize,
    shard_of: fn(&K) -> usize,
}

impl<K: Eq + std::hash::Hash + Copy, V: Clone> Shards<K, V> {
    fn new(capacity: usize, shards: usize, shard_of: fn(&K) -> usize) -> Self {
        Self {
            shards: (0..shards).map(|_| std::sync::RwLock::new(HashMap::default())).collect(),
            per_shard: capacity.div_ceil(shards),
            shard_of,
        }
    }

    fn shard(&self, k: &K) -> &std::sync::RwLock<HashMap<K, V>> {
        &self.shards[(self.shard_of)(k) % self.shards.len()]
    }

    fn get(&self, k: &K) -> Option<V> {
        self.shard(k).read().expect("cache shard").get(k).cloned()
    }

    fn insert(&self, k: K, v: V) {
        let mut shard = self.shard(&k).write().expect("cache shard");
        if shard.len() >= self.per_shard && !shard.contains_key(&k) {
            let drop: Vec<K> = shard.keys().take(self.per_shard / 10 + 1).copied().collect();
            for k in drop {
                shard.remove(&k);
            }
        }
        shard.insert(k, v);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().expect("cache shard").len()).sum()
    }

    fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        for s in &self.shards {
            s.write().expect("cache shard").retain(|_, v| keep(v));
        }
    }
}

/// The credential cache: token digest to the compact entry, about 60 bytes of table per
/// entry (a general-purpose cache with access-order bookkeeping cost ~250). Idle entries go
/// in `prune`.
struct CredentialMap {
    map: Shards<TokenDigest, Arc<CachedCredential>>,
    /// Coarse clock for idle tracking (seconds since the map was made).
    born: std::time::Instant,
}

impl CredentialMap {
    fn new(capacity: usize) -> Self {
        // Digests are uniformly random: their first byte spreads them.
        let map = Shards::new(capacity, CREDENTIAL_SHARDS, |d: &TokenDigest| usize::from(d.0[0]));
        Self { map, born: std::time::Instant::now() }
    }

    fn tick(&self) -> u32 {
        self.born.elapsed().as_secs() as u32
    }

    fn get(&self, d: &TokenDigest) -> Option<Arc<CachedCredential>> {
        let hit = self.map.get(d)?;
        hit.used.store(self.tick(), Ordering::Relaxed);
        Some(hit)
    }

    fn insert(&self, d: TokenDigest, c: Arc<CachedCredential>) {
        c.used.store(self.tick(), Ordering::Relaxed);
        self.map.insert(d, c);
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn prune_idle(&self, idle: std::time::Duration) {
        let now = self.tick();
        self.map.retain(|c| now.saturating_sub(c.used.load(Ordering::Relaxed)) < idle.as_secs() as u32);
    }
}

/// A permission set, and the permission epoch it was computed under.
type EpochSet = (u64, Arc<PermissionSet>);

/// The shard of a permission key: the id's last byte, random in both UUID versions (a
/// time-ordered id's first bytes are its timestamp).
fn perm_shard(k: &PermKey) -> usize {
    let (PermKey::User(_, UserId(id)) | PermKey::Role(_, RoleId(id))) = k;
    usize::from(id.as_bytes()[15])
}

/// What the cache keeps of a credential: only what authentication needs (about 150 bytes
/// with the email), not the whole session record.
struct CachedCredential {
    epoch: u64,
    /// When it was last used, in [`CredentialMap`] ticks.
    used: std::sync::atomic::AtomicU32,
    org_id: OrgId,
    principal: Principal,
    /// Always true for a workload (it has no user to disable).
    user_active: bool,
    kind: CachedKind,
}

enum CachedKind {
    ApiKey {
        id: ApiKeyId,
        digest: TokenDigest,
        expires: Option<Timestamp>,
    },
    Session {
        id: SessionId,
        kind: SessionKind,
        role_id: Option<RoleId>,
        bound_ip: Option<IpAddr>,
        lifetime: Lifetime,
        /// The session policy, parsed once: the role's permissions are bounded by it.
        policy: Option<Arc<PermissionSet>>,
        created: Timestamp,
        /// The whole stored record, kept once the session asked "who am I?" (`GET
        /// /v2/sessions/current`), so later asks are answered from memory. Filled lazily:
        /// most cached sessions never ask, and the record is several times the entry's size.
        /// It goes with the entry (credential epoch, refresh, idle pruning); what changes in
        /// a live session's row later is only its activity, which the caller overlays.
        record: std::sync::OnceLock<Arc<tessera_domain::session::Session>>,
    },
}

impl CachedCredential {
    fn new(epoch: u64, c: Credential) -> Self {
        match c {
            Credential::ApiKey { key, user } => Self {
                epoch,
                used: Default::default(),
                org_id: user.org_id,
                principal: Principal::user(user.id, user.email.as_str()),
                user_active: user.status == UserStatus::Active,
                kind: CachedKind::ApiKey { id: key.id, digest: key.digest, expires: key.date_expire },
            },
            Credential::Session { session, user } => Self {
                epoch,
                used: Default::default(),
                org_id: session.org_id,
                principal: match &user {
                    Some(u) => Principal::user(u.id, u.email.as_str()),
                    None => session.principal.clone(),
                },
                user_active: user.as_ref().is_none_or(|u| u.status == UserStatus::Active),
                kind: CachedKind::Session {
                    id: session.id,
                    kind: session.kind,
                    role_id: session.role_id,
                    bound_ip: session.bound_ip,
                    lifetime: session.lifetime(),
                    policy: session.session_policy.as_ref().map(|d| Arc::new(PermissionSet::from_documents([d]))),
                    created: session.created,
                    record: std::sync::OnceLock::new(),
                },
            },
        }
    }
}

pub struct AuthCache {
    credentials: CredentialMap,
    permissions: Shards<PermKey, EpochSet>,
    /// Bumped when a user, key or session changes in a way a cached credential must see.
    credential_epoch: AtomicU64,
    /// Bumped when any policy, attachment or group membership changes.
    permission_epoch: AtomicU64,
    /// What assuming a role reads (role, user, trusts, groups), per (org, role, user), tagged
    /// with both epochs: any change to users, roles, trusts or memberships bumps one.
    pub(crate) assume_facts: moka::sync::Cache<(OrgId, RoleId, UserId), Arc<crate::assume::AssumeFacts>>,
    /// Server-side gateway session keys, briefly (see `App::find_gateway_key`).
    pub(crate) gateway_keys: moka::sync::Cache<TokenDigest, Arc<(u64, tessera_store::GatewayKey)>>,
    /// Users the gateway asked about, under the credential epoch (see `App::gateway_user`).
    pub(crate) gateway_users: moka::sync::Cache<(OrgId, UserId), crate::gateway::CachedUser>,
    /// Sessions ended since they were cached, with their expiry (after which they can go).
    /// Read by every session-authenticated request, written when one ends.
    ended: std::sync::RwLock<HashMap<SessionId, Timestamp>>,
    /// False while the store's change feed is down: changes made elsewhere could be missed,
    /// so every request reads the store.
    trusted: std::sync::atomic::AtomicBool,
    /// Latest activity seen per idle-tracked session, and when it was last written back;
    /// sharded maps of two integers per session (a cache entry would cost far more).
    activity: Vec<Mutex<HashMap<SessionId, Activity>>>,
}

/// Activity of one session on this node. Requests move `seen` in memory; the store learns of
/// it at most once per [`ACTIVITY_WRITE_BACK`] seconds, far inside any idle timeout (≥ 300 s).
#[derive(Clone, Copy)]
struct Activity {
    seen: i64,
    written: i64,
}

const ACTIVITY_SHARDS: usize = 16;
/// Activity older than the longest idle timeout (18 000 s) can no longer matter.
const ACTIVITY_HORIZON: i64 = 18_000;

/// Seconds between write-backs of one session's activity.
pub const ACTIVITY_WRITE_BACK: i64 = 60;

impl Default for AuthCache {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthCache {
    pub fn new() -> Self {
        Self {
            credentials: CredentialMap::new(1_000_000),
            permissions: Shards::new(100_000, 16, perm_shard),
            credential_epoch: AtomicU64::new(0),
            permission_epoch: AtomicU64::new(0),
            ended: std::sync::RwLock::new(HashMap::default()),
            gateway_keys: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(crate::gateway::GATEWAY_KEY_TTL)
                .build(),
            gateway_users: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            assume_facts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            trusted: std::sync::atomic::AtomicBool::new(true),
            activity: (0..ACTIVITY_SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
        }
    }

    fn activity_shard(&self, id: SessionId) -> &Mutex<HashMap<SessionId, Activity>> {
        let b = id.0.as_bytes();
        &self.activity[usize::from(b[0] ^ b[15]) % ACTIVITY_SHARDS]
    }

    /// The latest activity this node has seen for a session.
    pub fn activity_of(&self, id: SessionId) -> Option<Timestamp> {
        self.activity_shard(id).lock().expect("activity lock").get(&id).map(|a| Timestamp(a.seen))
    }

    /// Forget every cached credential (a user was disabled or deleted, a key revoked).
    pub fn credentials_changed(&self) {
        self.credential_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Forget every cached permission set (a policy, attachment or membership changed).
    pub fn permissions_changed(&self) {
        self.permission_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops everything: used when this node may have missed a change made elsewhere.
    pub fn clear(&self) {
        self.credentials_changed();
        self.permissions_changed();
    }

    /// Stops (false) or resumes (true) serving from the caches; either way they are emptied.
    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
        self.clear();
    }

    /// The current (credential, permission) epochs, or None while caches must not be used.
    pub(crate) fn epochs(&self) -> Option<(u64, u64)> {
        self.is_trusted()
            .then(|| (self.credential_epoch.load(Ordering::SeqCst), self.permission_epoch.load(Ordering::SeqCst)))
    }

    /// Whether requests are served from the caches: false while the change feed is down.
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    pub fn session_ended(&self, id: SessionId, expires: Timestamp) {
        self.ended.write().expect("ended-set lock").insert(id, expires);
    }

    pub fn is_ended(&self, id: SessionId) -> bool {
        self.ended.read().expect("ended-set lock").contains_key(&id)
    }

    /// Drops remembered ends of sessions that have expired anyway, and activity too old to
    /// matter.
    pub fn prune(&self, now: Timestamp) {
        self.ended.write().expect("ended-set lock").retain(|_, exp| *exp > now);
        self.credentials.prune_idle(CREDENTIAL_IDLE);
        for shard in &self.activity {
            shard.lock().expect("activity lock").retain(|_, a| now.0 - a.seen < ACTIVITY_HORIZON);
        }
    }

    pub fn cached_credentials(&self) -> u64 {
        self.credentials.len() as u64
    }
}

fn unauthorized() -> AppError {
    AppError::Unauthorized("Invalid API token".into())
}

impl App {
    /// Resolves a bearer token presented from `peer` into a caller, or 401.
    pub async fn authenticate(&self, token: &str, peer: Option<IpAddr>) -> AppResult<Caller> {
        if token.is_empty() || token.len() > 512 {
            return Err(unauthorized());
        }
        let kind = TokenKind::of(token);
        let digest = TokenDigest::of(token);
        let epoch = self.cache.credential_epoch.load(Ordering::SeqCst);
        let cached = match self.cache.credentials.get(&digest).filter(|_| self.cache.is_trusted()) {
            Some(c) if c.epoch == epoch => {
                self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            _ => {
                self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
                let found = self.store.find_credential(kind, &digest).await?.ok_or_else(unauthorized)?;
                let entry = Arc::new(CachedCredential::new(epoch, found));
                self.cache.credentials.insert(digest, Arc::clone(&entry));
                entry
            }
        };
        let now = self.clock.now();
        if !cached.user_active {
            return Err(unauthorized());
        }
        match cached.kind {
            CachedKind::ApiKey { id, digest: stored, expires } => {
                // The lookup matched on the digest; compare again in constant time anyway so
                // no code path ever decides on a variable-time comparison of secrets.
                if !stored.ct_eq(&digest) {
                    return Err(unauthorized());
                }
                if expires.is_some_and(|exp| now >= exp) {
                    return Err(AppError::Unauthorized("API key expired".into()));
                }
                let Some(user) = cached.principal.user_id() else { return Err(unauthorized()) };
                let permissions = self.user_permissions(cached.org_id, user).await?;
                Ok(Caller {
                    org_id: cached.org_id,
                    kind: CallerKind::ApiKey(id),
                    permissions,
                    credential: CredentialRef(Arc::clone(&cached)),
                })
            }
            CachedKind::Session { id, kind: session_kind, role_id, bound_ip, lifetime, ref policy, .. } => {
                if self.cache.is_ended(id) {
                    return Err(unauthorized());
                }
                let seen = self.cache.activity_of(id).unwrap_or(lifetime.last_activity);
                let mut lifetime = lifetime;
                match lifetime.liveness(now, seen) {
                    Liveness::Alive => {}
                    Liveness::Dead(EndReason::IdleTimeout) => {
                        // Another node may have seen activity this one has not: ask the store
                        // before ending a session that may be in use.
                        lifetime = self.refresh_session(kind, &digest, epoch).await?;
                        if let Liveness::Dead(reason) = lifetime.liveness(now, seen) {
                            return Err(AppError::Unauthorized(format!("session has ended ({})", reason.as_str())));
                        }
                    }
                    Liveness::Dead(reason) => {
                        return Err(AppError::Unauthorized(format!("session has ended ({})", reason.as_str())));
                    }
                }
                if !tessera_domain::session::ip_allows(bound_ip, peer) {
                    return Err(AppError::Unauthorized("this session token is bound to another IP address".into()));
                }
                if lifetime.idle_timeout.is_some() {
                    self.record_activity(cached.org_id, id, lifetime.last_activity, now).await;
                }
                let (kind, permissions) = match (session_kind, role_id) {
                    (SessionKind::AssumedRole, Some(role)) => {
                        let role_set = self.role_permissions(cached.org_id, role).await?;
                        // A session policy bounds the role's permissions: never more.
                        let set = match policy {
                            Some(bound) => Arc::new(role_set.within(Arc::clone(bound))),
                            None => role_set,
                        };
                        (CallerKind::RoleSession { session: id, role }, set)
                    }
                    // Only a role session can speak for a workload: it has no permissions of its own.
                    _ => match cached.principal.user_id() {
                        Some(user) => (CallerKind::LoginSession(id), self.user_permissions(cached.org_id, user).await?),
                        None => return Err(unauthorized()),
                    },
                };
                Ok(Caller { org_id: cached.org_id, kind, permissions, credential: CredentialRef(Arc::clone(&cached)) })
            }
        }
    }

    /// The caller's own session record as stored, from its credential's cache entry when
    /// that holds it, else read once and kept there; `None` for an API key or a session gone
    /// from the store. Gateway sessions are always read: their renewal rewrites the record.
    pub(crate) async fn own_session_record(&self, caller: &Caller) -> AppResult<Option<Arc<Session>>> {
        let CachedKind::Session { id, kind, ref record, .. } = caller.credential.0.kind else {
            return Ok(None);
        };
        if let Some(r) = record.get() {
            return Ok(Some(Arc::clone(r)));
        }
        let Some(found) = self.store.get_session(caller.org_id, id).await?.map(Arc::new) else { return Ok(None) };
        if kind != SessionKind::Gateway {
            let _ = record.set(Arc::clone(&found));
        }
        Ok(Some(found))
    }

    /// When the caller's session was created and when it expires, from the cache entry.
    pub(crate) fn own_session_times(caller: &Caller) -> Option<(Timestamp, Timestamp)> {
        match caller.credential.0.kind {
            CachedKind::Session { created, lifetime, .. } => Some((created, lifetime.expires)),
            CachedKind::ApiKey { .. } => None,
        }
    }

    /// Re-reads a session credential from the store and replaces the cached copy.
    async fn refresh_session(&self, kind: TokenKind, digest: &TokenDigest, epoch: u64) -> AppResult<Lifetime> {
        let found = self.store.find_credential(kind, digest).await?.ok_or_else(unauthorized)?;
        let entry = CachedCredential::new(epoch, found);
        let CachedKind::Session { lifetime, .. } = entry.kind else { return Err(unauthorized()) };
        if !entry.user_active {
            return Err(unauthorized());
        }
        self.cache.credentials.insert(*digest, Arc::new(entry));
        Ok(lifetime)
    }

    /// Moves a session's activity to `now` in memory, and in the store at most once a minute.
    async fn record_activity(&self, org: OrgId, id: SessionId, stored: Timestamp, now: Timestamp) {
        let write_from = {
            let mut shard = self.cache.activity_shard(id).lock().expect("activity lock");
            let a = shard.entry(id).or_insert(Activity { seen: now.0, written: stored.0 });
            a.seen = a.seen.max(now.0);
            if now.0 - a.written >= ACTIVITY_WRITE_BACK {
                let before = a.written;
                a.written = now.0;
                Some(before)
            } else {
                None
            }
        };
        if let Some(before) = write_from
            && let Err(e) = self.store.touch_session(org, id, now).await
        {
            // The in-memory activity still protects this node; the next request retries.
            if let Some(a) = self.cache.activity_shard(id).lock().expect("activity lock").get_mut(&id) {
                a.written = before;
            }
            tracing::warn!(session = %id, error = %e, "could not record session activity");
        }
    }

    async fn permissions(&self, key: PermKey) -> AppResult<Arc<PermissionSet>> {
        let epoch = self.cache.permission_epoch.load(Ordering::SeqCst);
        if let Some(hit) = self.cache.permissions.get(&key)
            && hit.0 == epoch
            && self.cache.is_trusted()
        {
            return Ok(Arc::clone(&hit.1));
        }
        let docs = match key {
            PermKey::User(org, user) => self.store.user_policy_documents(org, user).await?,
            PermKey::Role(org, role) => self.store.role_policy_documents(org, role).await?,
        };
        let set = Arc::new(PermissionSet::from_documents(&docs));
        self.cache.permissions.insert(key, (epoch, Arc::clone(&set)));
        Ok(set)
    }

    pub(crate) async fn user_permissions(&self, org: OrgId, user: UserId) -> AppResult<Arc<PermissionSet>> {
        self.permissions(PermKey::User(org, user)).await
    }

    pub(crate) async fn role_permissions(&self, org: OrgId, role: RoleId) -> AppResult<Arc<PermissionSet>> {
        self.permissions(PermKey::Role(org, role)).await
    }

    pub fn cache(&self) -> &AuthCache {
        &self.cache
    }
}

impl Caller {
    /// Checks that the caller may perform `action` on `resource` (an id, or `*`).
    pub fn authorize(&self, action: &str, resource: &str) -> AppResult<()> {
        match self.permissions.evaluate(action, resource) {
            Decision::Allow => Ok(()),
            Decision::ExplicitDeny => {
                Err(AppError::Forbidden(format!("{action} on {resource} is explicitly denied by a policy")))
            }
            Decision::ImplicitDeny => {
                let who = match self.kind {
                    CallerKind::RoleSession { role, .. } => format!("this session of role {role}"),
                    _ => match self.user_id() {
                        Some(user) => format!("user {user}"),
                        None => format!("workload {}", self.display_name()),
                    },
                };
                Err(AppError::Forbidden(format!("{who} is not allowed {action} on {resource}")))
            }
        }
    }
}

impl App {
    /// Applies changes made through other nodes to this node's caches, until the store's
    /// feed closes. Returns None for a store that is not shared (nothing to follow).
    pub fn follow_store_changes(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        use tessera_store::StoreChange;
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = self.store.changes()?;
        let app = Arc::clone(self);
        Some(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(StoreChange::Credentials) => app.cache.credentials_changed(),
                    Ok(StoreChange::Permissions) => app.cache.permissions_changed(),
                    Ok(StoreChange::Gateway) => app.gateway_changed(),
                    Ok(StoreChange::SessionEnded { id, expires }) => app.cache.session_ended(id, expires),
                    Ok(StoreChange::FeedLost) => app.cache.set_trusted(false),
                    Ok(StoreChange::FeedRestored) => {
                        app.cache.set_trusted(true);
                        app.gateway_changed();
                    }
                    // Missed some: start over from the store.
                    Err(RecvError::Lagged(_)) => app.cache.clear(),
                    Err(RecvError::Closed) => return,
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{BootstrapOutcome, BootstrapRequest, ManualClock, NewUser, SignIn, System};
    use rand::SeedableRng;
    use tessera_domain::ids::{ApiKeyId, OrgId, SessionId, UserId};
    use tessera_domain::user::{Email, UserStatus};

    const T0: Timestamp = Timestamp(1_893_492_000);
    const ADMIN_KEY: &str = "unit-admin-key-0123456789abcdef0123456789";
    const PASSWORD: &str = "correct horse battery staple";

    fn digest(i: u32) -> TokenDigest {
        TokenDigest::of(&format!("tessera_ak_{i:08}"))
    }

    fn entry(d: TokenDigest) -> Arc<CachedCredential> {
        Arc::new(CachedCredential {
            epoch: 0,
            used: Default::default(),
            org_id: OrgId::from_random([1; 16]),
            principal: Principal::user(UserId::from_random([2; 16]), "a@example.com"),
            user_active: true,
            kind: CachedKind::ApiKey { id: ApiKeyId::from_random([3; 16]), digest: d, expires: None },
        })
    }

    #[test]
    fn a_full_credential_shard_drops_a_tenth_and_keeps_the_newest() {
        // 320 entries: 10 per shard.
        let map = CredentialMap::new(320);
        for i in 0..5_000 {
            map.insert(digest(i), entry(digest(i)));
            assert!(map.get(&digest(i)).is_some(), "the entry just inserted is always there");
        }
        assert!(map.len() <= 320, "bounded: {} entries", map.len());
        assert!(map.len() >= 320 - 32, "a full shard drops a tenth, not everything: {}", map.len());
        for shard in &map.map.shards {
            assert!(shard.read().unwrap().len() <= 10);
        }
        // Replacing an entry of a full shard evicts nothing.
        let full: Vec<TokenDigest> = map.map.shards[0].read().unwrap().keys().copied().collect();
        assert_eq!(full.len(), 10);
        map.insert(full[0], entry(full[0]));
        assert!(full.iter().all(|d| map.get(d).is_some()));
    }

    #[test]
    fn idle_credentials_are_pruned_and_used_ones_kept() {
        let mut map = CredentialMap::new(1_000);
        // A map made 1 000 s ago, so ticks can be set in the past.
        map.born = std::time::Instant::now() - Duration::from_secs(1_000);
        let (idle, busy) = (digest(1), digest(2));
        map.insert(idle, entry(idle));
        map.insert(busy, entry(busy));
        map.map.get(&idle).unwrap().used.store(1_000 - 601, Ordering::Relaxed);
        map.map.get(&busy).unwrap().used.store(1_000 - 601, Ordering::Relaxed);
        // Used again just now: no longer idle.
        assert!(map.get(&busy).is_some());
        map.prune_idle(CREDENTIAL_IDLE);
        assert!(map.get(&idle).is_none(), "unused for 601 s: pruned");
        assert!(map.get(&busy).is_some(), "used just now: kept");
    }

    #[test]
    fn ended_sessions_and_old_activity_are_forgotten_only_when_they_cannot_matter() {
        let cache = AuthCache::new();
        let (soon, later) = (SessionId::from_random([4; 16]), SessionId::from_random([5; 16]));
        cache.session_ended(soon, Timestamp(T0.0 + 100));
        cache.session_ended(later, Timestamp(T0.0 + 1_000));
        let activity = |id: SessionId, seen: i64| {
            cache.activity_shard(id).lock().unwrap().insert(id, Activity { seen, written: seen });
        };
        activity(soon, T0.0 - ACTIVITY_HORIZON);
        activity(later, T0.0 + 100 - ACTIVITY_HORIZON);
        cache.prune(Timestamp(T0.0 + 99));
        assert!(cache.is_ended(soon) && cache.is_ended(later), "not yet expired: still refused by the ended set");
        assert_eq!(cache.activity_of(soon), None, "older than the longest idle timeout");
        assert_eq!(cache.activity_of(later), Some(Timestamp(T0.0 + 100 - ACTIVITY_HORIZON)), "seen within the horizon");
        cache.prune(Timestamp(T0.0 + 100));
        assert!(!cache.is_ended(soon), "expired anyway: the store refuses it by itself");
        assert!(cache.is_ended(later));
    }

    /// An app over a real SQLite store with a controlled clock, its administrator, and a user
    /// who signs in with a password.
    struct Fixture {
        app: Arc<App>,
        clock: ManualClock,
        admin: Caller,
        user: UserId,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        async fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap();
            let clock = ManualClock::new(T0);
            let rng = Box::new(rand::rngs::StdRng::seed_from_u64(7));
            let app = Arc::new(App::new(Arc::new(store), Arc::new(clock.clone()), rng));
            let request = BootstrapRequest {
                organization_name: "unit".into(),
                admin_email: "admin@example.com".into(),
                api_key: Some(ADMIN_KEY.into()),
            };
            assert!(matches!(
                app.bootstrap(System::BOOTSTRAP, request).await.unwrap(),
                BootstrapOutcome::Created { .. }
            ));
            let admin = app.authenticate(ADMIN_KEY, None).await.unwrap();
            let user = NewUser {
                email: Email::parse("lee@example.com").unwrap(),
                first_name: String::new(),
                last_name: String::new(),
                password: Some(PASSWORD.into()),
            };
            let user = app.create_user(&admin, user).await.unwrap().id;
            Fixture { app, clock, admin, user, _dir: dir }
        }

        async fn sign_in(&self) -> crate::SignedIn {
            let req = SignIn {
                email: "lee@example.com".into(),
                password: PASSWORD.into(),
                organization: None,
                client_ip: None,
            };
            self.app.sign_in(req).await.unwrap()
        }

        /// The session's last activity as the store has it.
        async fn stored_activity(&self, id: SessionId) -> Timestamp {
            self.app.store.get_session(self.admin.org_id, id).await.unwrap().unwrap().last_activity
        }

        fn at(&self, secs: i64) {
            let now = self.app.now().0;
            self.clock.advance(T0.0 + secs - now);
        }
    }

    #[tokio::test]
    async fn a_busy_session_is_written_back_at_most_once_a_minute() {
        let f = Fixture::new().await;
        let s = f.sign_in().await;
        assert_eq!(f.stored_activity(s.session.id).await, T0);
        let mut writes = vec![];
        for secs in [30, 59, 60, 61, 119, 120, 150, 180] {
            f.at(secs);
            f.app.authenticate(&s.token, None).await.unwrap();
            assert_eq!(f.app.cache().activity_of(s.session.id), Some(Timestamp(T0.0 + secs)), "seen in memory at once");
            let stored = f.stored_activity(s.session.id).await;
            if writes.last() != Some(&stored) && stored != T0 {
                writes.push(stored);
            }
        }
        let at = |s: i64| Timestamp(T0.0 + s);
        assert_eq!(writes, [at(60), at(120), at(180)], "one write per minute of activity, none in between");
    }

    #[tokio::test]
    async fn an_idle_looking_session_is_re_read_before_it_is_refused() {
        let f = Fixture::new().await;
        let (busy_elsewhere, idle) = (f.sign_in().await, f.sign_in().await);
        for s in [&busy_elsewhere, &idle] {
            f.app.authenticate(&s.token, None).await.unwrap();
        }
        // Another node saw the first session in use and wrote it back; this node did not.
        f.app.store.touch_session(f.admin.org_id, busy_elsewhere.session.id, Timestamp(T0.0 + 1_700)).await.unwrap();
        f.at(1_801);
        let refused = f.app.authenticate(&idle.token, None).await.unwrap_err();
        assert_eq!(refused, AppError::Unauthorized("session has ended (idle_timeout)".into()));
        f.app.authenticate(&busy_elsewhere.token, None).await.expect("alive by the store's activity");
        // Idle from its latest activity (1 801 s, seen here) on, it ends.
        f.at(1_801 + 1_800);
        assert!(f.app.authenticate(&busy_elsewhere.token, None).await.is_err());
    }

    #[tokio::test]
    async fn while_the_feed_is_lost_every_request_reads_the_store() {
        let f = Fixture::new().await;
        let key = f.app.create_api_key(&f.admin, f.user, crate::NewApiKey { name: "k".into(), date_expire: None });
        let key = key.await.unwrap().secret;
        // Disabled or enabled by "another node": straight in the store, so this node hears nothing.
        let f = &f;
        let set_status = |status: UserStatus| async move {
            let mut user = f.app.store.get_user(f.admin.org_id, f.user).await.unwrap().unwrap();
            user.status = status;
            f.app.store.update_user(&user, f.app.now()).await.unwrap();
        };
        f.app.authenticate(&key, None).await.unwrap();
        set_status(UserStatus::Disabled).await;
        assert!(f.app.authenticate(&key, None).await.is_ok(), "a trusted cache serves what it holds");
        set_status(UserStatus::Active).await;

        f.app.cache().set_trusted(false);
        // Used while the feed is down (nothing cached now may be served later) ...
        f.app.authenticate(&key, None).await.unwrap();
        set_status(UserStatus::Disabled).await;
        // ... so the next request sees the change made elsewhere.
        assert!(f.app.authenticate(&key, None).await.is_err(), "an untrusted cache is bypassed");
        set_status(UserStatus::Active).await;
        f.app.authenticate(&key, None).await.unwrap();
        f.app.cache().set_trusted(true);
        f.app.authenticate(&key, None).await.unwrap();
        set_status(UserStatus::Disabled).await;
        assert!(f.app.authenticate(&key, None).await.is_ok(), "trusted again: served from the cache");
    }
}
