//! Tessera's use cases. Each public method of [`App`] is one operation a user can ask for:
//! it authorizes the caller, applies the domain's rules and talks to the [`Store`].
//!
//! This crate knows no HTTP and no SQL; the server and the CLI are adapters over it.

pub mod actions;
mod admin;
mod aggregate;
mod assignments;
mod assume;
pub mod audit;
mod auth;
mod bootstrap;
pub mod clock;
pub mod gateway;
pub mod hashing;
mod iam;
mod login;
mod metrics;
pub mod oidc;
mod sts;
mod system;

use std::sync::{Arc, Mutex};

use tessera_domain::FieldError;
use tessera_store::{Store, StoreError};

pub use aggregate::SessionAggregation;
pub use assignments::{CallerPolicy, PolicySource};
pub use assume::{AssumeInput, AssumedSession};
pub use auth::{AuthCache, Caller, CallerKind};
pub use bootstrap::{BootstrapOutcome, BootstrapRequest};
pub use clock::{Clock, ManualClock, SystemClock};
pub use iam::*;
pub use login::CurrentSession;
pub use login::{DEFAULT_TOP, Introspection, LoginLock, MAX_TOP, SIGN_IN_FAILED, SessionQueryText, SignIn, SignedIn};
pub use oidc::{FetchedKeys, IssuerInput, IssuerState, KeyFetcher, WebIdentityAssume};
pub use system::System;

/// What [`App::readiness`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The store's error when it did not answer.
    pub store: Result<(), String>,
    /// False while the change feed from other nodes is lost.
    pub change_feed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The wording follows Vultr's ("Role not found"), which existing tooling matches on.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// The write collided with a concurrent one on every attempt the store made and was
    /// rolled back: nothing of it was saved, and the request may be sent again as it was. The
    /// text is the store's, for the log only.
    #[error("{0}")]
    Contended(String),
    /// Too much of a bounded resource (password hashing) is in use; retry after the given
    /// number of seconds. Nothing was changed.
    #[error("{message}")]
    Overloaded { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AppError::Conflict(conflict(what)),
            StoreError::NotFound(what) => AppError::NotFound(missing_reference(what).into()),
            StoreError::Unavailable(m) => AppError::Unavailable(m),
            StoreError::Contended(m) => AppError::Contended(m),
            StoreError::Internal(m) => AppError::Internal(m),
            StoreError::Invalid(f) => AppError::Invalid(f),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// What a client reads when its write collided with concurrent ones on every attempt
/// ([`AppError::Contended`]); every adapter answers it 503 with `Retry-After: 1`.
pub const CONTENDED: &str = "the write collided with a concurrent one and was not saved; it may be retried as it was";

/// The `Retry-After` seconds of a [`AppError::Contended`] answer: the collision is over long
/// before a second has passed.
pub const CONTENDED_RETRY_AFTER_SECS: u64 = 1;

/// What a user reads when a change collides with what exists (the wording the API has always
/// used).
fn conflict(what: tessera_store::Conflict) -> String {
    use tessera_store::Conflict;
    match what {
        Conflict::UserEmail(email) => format!("a user with email {email} already exists"),
        Conflict::GroupName(name) => format!("a group named '{name}' already exists"),
        Conflict::PolicyName(name) => format!("a policy named '{name}' already exists"),
        Conflict::RoleName(name) => format!("a role named '{name}' already exists"),
        // A CA certificate's unique name is its digest (Kong keeps `cert_digest` unique).
        Conflict::GatewayName { kind: tessera_store::GatewayKind::CaCertificate, name } => {
            format!("a CA certificate with cert_digest {name} already exists")
        }
        Conflict::GatewayName { kind, name } => format!("a {} named '{name}' already exists", kind.as_str()),
        // Only session plugins have a scope key; the one-per-node check names the holder,
        // this is the answer when another node's write won the race.
        Conflict::GatewayScope { scope, .. } => format!(
            "another session plugin already applies to this scope ({}); change that one instead",
            scope.trim_start_matches("session ")
        ),
        Conflict::GatewayInUse { kind, id } => format!("the {} {id} is still in use", kind.as_str()),
        Conflict::Other(message) => message,
    }
}

/// What a user reads when a change names something that does not exist (the wording the API
/// has always used).
fn missing_reference(what: tessera_store::Entity) -> &'static str {
    use tessera_store::Entity;
    match what {
        Entity::User => "Invalid user",
        Entity::Group => "Group not found",
        Entity::Policy => "Policy not found",
        Entity::Role => "Role not found",
        Entity::Trust => "Trust not found",
        Entity::Session => "Session not found",
        Entity::OidcIssuer => "Issuer Not Found",
        Entity::Referenced => "a referenced object does not exist",
    }
}

pub(crate) fn not_found(what: &str) -> AppError {
    AppError::NotFound(format!("{what} not found"))
}

/// The application: a store, a clock, an RNG and the authentication cache.
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Mutex<Box<dyn rand::RngCore + Send>>,
    pub(crate) cache: AuthCache,
    pub(crate) lockout: tessera_domain::login::LockoutPolicy,
    /// Seconds ended session records are kept before the sweep purges them.
    pub(crate) session_retention: i64,
    /// When the query last swept timed-out sessions (Unix seconds).
    pub(crate) last_sweep: std::sync::atomic::AtomicI64,
    /// This node's plugin writes, one at a time (see the gateway's `checked`).
    pub(crate) plugin_writes: tokio::sync::Mutex<()>,
    /// Moves on every gateway configuration change; the gateway rebuilds its table.
    pub(crate) gateway_epoch: tokio::sync::watch::Sender<u64>,
    /// The bounded gate every password hash and verification goes through.
    pub(crate) hashing: hashing::PasswordHashing,
    /// Real password hashes checked by sign-in (see `App::password_checks`).
    pub(crate) password_checks: std::sync::atomic::AtomicU64,
    /// Seconds audit events are kept before the sweep purges them.
    pub(crate) audit_retention: i64,
    /// OIDC issuers' keys, as fetched (see `oidc`).
    pub(crate) issuer_keys: oidc::IssuerKeyCache,
    /// Counters for Prometheus (see `metrics`).
    pub(crate) metrics: metrics::AppMetrics,
}

/// How long ended sessions stay queryable by default: 30 days.
pub const DEFAULT_SESSION_RETENTION: i64 = 30 * 86_400;

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, rng: Box<dyn rand::RngCore + Send>) -> Self {
        Self {
            store,
            clock,
            rng: Mutex::new(rng),
            cache: AuthCache::new(),
            lockout: Default::default(),
            session_retention: DEFAULT_SESSION_RETENTION,
            last_sweep: std::sync::atomic::AtomicI64::new(i64::MIN),
            plugin_writes: tokio::sync::Mutex::new(()),
            gateway_epoch: tokio::sync::watch::Sender::new(0),
            hashing: hashing::PasswordHashing::new(Default::default()),
            password_checks: std::sync::atomic::AtomicU64::new(0),
            audit_retention: audit::DEFAULT_AUDIT_RETENTION,
            issuer_keys: oidc::IssuerKeyCache::new(),
            metrics: Default::default(),
        }
    }

    /// Keeps ended session records for `secs` before purging them.
    pub fn with_session_retention(mut self, secs: i64) -> Self {
        self.session_retention = secs.max(0);
        self
    }

    /// The storage backend's short name ("sqlite", "postgres"), for health answers and logs.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    pub fn now(&self) -> tessera_domain::Timestamp {
        self.clock.now()
    }

    /// Whether this node is ready for traffic: the store answers an indexed read (a
    /// credential lookup that finds nothing), and the change feed is up (a backend without
    /// one, SQLite, has nothing to miss). The schema was migrated when the store opened, and
    /// a newer one refused, so a running node needs no check for it.
    pub async fn readiness(&self) -> Readiness {
        let nobody = tessera_domain::token::TokenDigest([0; 32]);
        let store = match self.store.find_credential(tessera_domain::token::TokenKind::ApiKey, &nobody).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        Readiness { store, change_feed: self.cache.is_trusted() }
    }

    pub(crate) fn with_rng<T>(&self, f: impl FnOnce(&mut dyn rand::RngCore) -> T) -> T {
        let mut rng = self.rng.lock().expect("rng lock");
        f(&mut **rng)
    }

    pub(crate) fn new_id<T>(&self, make: fn([u8; 16]) -> T) -> T {
        self.with_rng(|rng| {
            let mut b = [0u8; 16];
            rng.fill_bytes(&mut b);
            make(b)
        })
    }
}
