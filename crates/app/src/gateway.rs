//! Gateway use cases: Kong-shaped services, routes, plugins and CA certificates (validated,
//! stored as JSON, announced to the running gateway), and the sessions the gateway's session
//! plugin creates.

use serde_json::Value;
use tessera_domain::Timestamp;
use tessera_domain::gateway::{CaCertificate, Plugin, Route, Service, check_text, merge_patch};
use tessera_domain::ids::{OrgId, SessionId, UserId};
use tessera_domain::session::{EndReason, Principal, Session, SessionKind, SessionStart};
use tessera_domain::token::TokenDigest;
use tessera_domain::user::{User, UserStatus};
use tessera_store::audit as trail;
use tessera_store::{GatewayKey, GatewayKind, GatewayObject, GatewayRekey};
use uuid::Uuid;

use crate::actions as act;
use crate::audit::events::{SIGN_IN, SIGN_OUT};
use crate::{App, AppError, AppResult, Caller, FieldError, System};

/// How long a server-side gateway key may be served from memory.
pub const GATEWAY_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A user as last read for the gateway, under the credential epoch it was read at (shared:
/// a hit costs no copy of the user).
pub(crate) type CachedUser = (u64, Option<std::sync::Arc<User>>);

/// A renewed server-side gateway session: the key the cookie named, the new one and its
/// sealed record.
#[derive(Debug, Clone)]
pub struct GatewayRenewal {
    pub org: OrgId,
    pub session: SessionId,
    pub old: TokenDigest,
    pub new: TokenDigest,
    /// The storage record of the new cookie.
    pub data: String,
    /// Until when the old key still opens the session (`stale_ttl`).
    pub stale_until: Timestamp,
    /// When the new key expires.
    pub expires: Timestamp,
}

/// One of the gateway object kinds, typed.
pub trait GatewayResource: serde::Serialize + serde::de::DeserializeOwned + Clone {
    const KIND: GatewayKind;
    const NOUN: &'static str;
    /// Kong's defaults and checks, as the object is written at `now` (the app's clock).
    fn normalize(&mut self, now: Timestamp) -> Result<(), FieldError>;
    fn id_mut(&mut self) -> &mut Option<Uuid>;
    fn name(&self) -> Option<&str>;
    fn stamps(&mut self) -> (&mut i64, &mut i64);
}

/// The trait's methods are the same field accesses for every kind; only the name differs,
/// and whether the kind's checks depend on the time (`by the clock`).
macro_rules! gateway_resource {
    ($t:ty, $kind:ident, $noun:literal, $name:ident) => {
        gateway_resource!(@impl $t, $kind, $noun, $name, |t: &mut $t, _| t.normalize());
    };
    ($t:ty, $kind:ident, $noun:literal, $name:ident, by the clock) => {
        gateway_resource!(@impl $t, $kind, $noun, $name, |t: &mut $t, now| t.normalize(now));
    };
    (@impl $t:ty, $kind:ident, $noun:literal, $name:ident, $normalize:expr) => {
        impl GatewayResource for $t {
            const KIND: GatewayKind = GatewayKind::$kind;
            const NOUN: &'static str = $noun;
            fn normalize(&mut self, now: Timestamp) -> Result<(), FieldError> {
                ($normalize)(self, now)
            }
            fn id_mut(&mut self) -> &mut Option<Uuid> {
                &mut self.id
            }
            fn name(&self) -> Option<&str> {
                self.$name.as_deref()
            }
            fn stamps(&mut self) -> (&mut i64, &mut i64) {
                (&mut self.created_at, &mut self.updated_at)
            }
        }
    };
}

gateway_resource!(Service, Service, "Service", name);
gateway_resource!(Route, Route, "Route", name);
gateway_resource!(Plugin, Plugin, "Plugin", instance_name);
// A CA certificate's digest is its unique name: the store refuses a second one with the same
// certificate in the organization, on every node at once.
// A CA certificate that has expired is refused when written (Kong's check), by the app's clock.
gateway_resource!(CaCertificate, CaCertificate, "CA certificate", cert_digest, by the clock);

/// Every organization's gateway configuration, for the gateway's routing table.
#[derive(Debug, Default)]
pub struct GatewaySnapshot {
    pub services: Vec<(OrgId, Service)>,
    pub routes: Vec<(OrgId, Route)>,
    pub plugins: Vec<(OrgId, Plugin)>,
    pub ca_certificates: Vec<(OrgId, CaCertificate)>,
}

/// One object another names and needs to exist: the field that names it, its kind, its id.
struct Named {
    field: String,
    kind: GatewayKind,
    id: Uuid,
}

/// What `value` (an object of `kind`, as it will be stored) names, in its fields' order: a
/// route's service, a plugin's route and service, a service's CA certificates. (Plugins name
/// no consumer: the session plugin refuses one, and there are no consumer objects.)
fn named(kind: GatewayKind, value: &Value) -> Vec<Named> {
    let uuid = |v: &Value| v.as_str().and_then(|s| s.parse().ok());
    let by_id = |field: &str, kind| {
        let id = value.get(field).and_then(|r| r.get("id")).and_then(uuid)?;
        Some(Named { field: format!("{field}.id"), kind, id })
    };
    match kind {
        GatewayKind::Route => by_id("service", GatewayKind::Service).into_iter().collect(),
        GatewayKind::Plugin => {
            [by_id("route", GatewayKind::Route), by_id("service", GatewayKind::Service)].into_iter().flatten().collect()
        }
        GatewayKind::Service => {
            let cas = value.get("ca_certificates").and_then(Value::as_array).into_iter().flatten().enumerate();
            cas.filter_map(|(i, v)| {
                Some(Named { field: format!("ca_certificates[{i}]"), kind: GatewayKind::CaCertificate, id: uuid(v)? })
            })
            .collect()
        }
        GatewayKind::CaCertificate => vec![],
    }
}

/// The ids the store keeps as the object's references, sorted and once each: it cannot be
/// written naming a missing one, and none can be deleted while it names them.
fn refs(named: &[Named]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = named.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// How a message names an object of `kind`.
fn noun(kind: GatewayKind) -> &'static str {
    match kind {
        GatewayKind::Service => Service::NOUN,
        GatewayKind::Route => Route::NOUN,
        GatewayKind::Plugin => Plugin::NOUN,
        GatewayKind::CaCertificate => CaCertificate::NOUN,
    }
}

/// The secret is write-only (reads answer it as null): a replace or patch that leaves it out,
/// or sends it back as null or empty, keeps the stored one.
fn keep_stored_secret(value: &mut Value, stored: &str) {
    let given = value.get("config").and_then(|c| c.get("secret"));
    if given.is_some_and(|s| s.as_str().is_some_and(|s| !s.is_empty())) {
        return;
    }
    let stored: Value = serde_json::from_str(stored).unwrap_or_default();
    let Some(secret) = stored.get("config").and_then(|c| c.get("secret")).filter(|s| s.is_string()) else { return };
    match value.get_mut("config") {
        Some(Value::Object(c)) => {
            c.insert("secret".into(), secret.clone());
        }
        None | Some(Value::Null) => value["config"] = serde_json::json!({ "secret": secret }),
        // Not an object: parsing refuses it with the field's name.
        Some(_) => {}
    }
}

/// The scope a plugin applies to, as Kong keys it: its route and its service (either or
/// both may be unset; both unset is the whole organization).
fn plugin_scope(v: &Value) -> (Option<&str>, Option<&str>) {
    let id = |field: &str| v.get(field).and_then(|r| r.get("id")).and_then(Value::as_str);
    (id("route"), id("service"))
}

/// What the store keeps unique for a plugin: a session plugin's scope (the store's migration
/// 12 writes the same text for plugins made before it); `None` for other plugins.
fn scope_key(kind: GatewayKind, v: &Value) -> Option<String> {
    if kind != GatewayKind::Plugin || v["name"] != "session" {
        return None;
    }
    let (route, service) = plugin_scope(v);
    Some(format!("session route={} service={}", route.unwrap_or("*"), service.unwrap_or("*")))
}

fn actions(kind: GatewayKind) -> [&'static str; 5] {
    match kind {
        GatewayKind::Service => [
            act::GATEWAY_SERVICE_CREATE,
            act::GATEWAY_SERVICE_READ,
            act::GATEWAY_SERVICE_LIST,
            act::GATEWAY_SERVICE_UPDATE,
            act::GATEWAY_SERVICE_DELETE,
        ],
        GatewayKind::Route => [
            act::GATEWAY_ROUTE_CREATE,
            act::GATEWAY_ROUTE_READ,
            act::GATEWAY_ROUTE_LIST,
            act::GATEWAY_ROUTE_UPDATE,
            act::GATEWAY_ROUTE_DELETE,
        ],
        GatewayKind::Plugin => [
            act::GATEWAY_PLUGIN_CREATE,
            act::GATEWAY_PLUGIN_READ,
            act::GATEWAY_PLUGIN_LIST,
            act::GATEWAY_PLUGIN_UPDATE,
            act::GATEWAY_PLUGIN_DELETE,
        ],
        GatewayKind::CaCertificate => [
            act::GATEWAY_CA_CERTIFICATE_CREATE,
            act::GATEWAY_CA_CERTIFICATE_READ,
            act::GATEWAY_CA_CERTIFICATE_LIST,
            act::GATEWAY_CA_CERTIFICATE_UPDATE,
            act::GATEWAY_CA_CERTIFICATE_DELETE,
        ],
    }
}

fn decode<T: GatewayResource>(o: &GatewayObject) -> AppResult<T> {
    serde_json::from_str(&o.body).map_err(|e| AppError::Internal(format!("stored {} is unreadable: {e}", T::NOUN)))
}

/// A gateway object read from the store, in any organization (for the gateway itself).
pub fn decode_all<T: GatewayResource>(objects: &[GatewayObject]) -> Vec<(OrgId, T)> {
    objects.iter().filter_map(|o| decode::<T>(o).ok().map(|t| (o.org_id, t))).collect()
}

impl App {
    /// Tells this node's gateway to rebuild its table (other nodes hear it from the store).
    pub fn gateway_changed(&self) {
        self.gateway_epoch.send_modify(|e| *e += 1);
    }

    /// Watches gateway configuration changes (a counter that moves on every change).
    pub fn gateway_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.gateway_epoch.subscribe()
    }

    /// 32 fresh random bytes for a sign-in form's token (the gateway's and the console's).
    pub fn form_nonce(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.with_rng(|r| r.fill_bytes(&mut b));
        b
    }

    fn random_secret(&self) -> String {
        use base64::Engine;
        let mut b = [0u8; 32];
        self.with_rng(|r| r.fill_bytes(&mut b));
        // Kong's default: 32 random bytes, base64, with '/', '+' and '=' replaced.
        base64::engine::general_purpose::STANDARD.encode(b).replace(['/', '+', '='], "x")
    }

    /// Refuses an object naming one that does not exist (or is of another kind), naming the
    /// field: a 400 the user can act on. The store decides again in the write itself.
    async fn check_refs(&self, org: OrgId, named: &[Named]) -> AppResult<()> {
        for n in named {
            if self.store.get_gateway_object(org, n.kind, n.id).await?.is_none() {
                return Err(FieldError::new(&n.field, format!("{} {} does not exist", noun(n.kind), n.id)).into());
            }
        }
        Ok(())
    }

    /// Writes an object with the objects it names. One deleted (on any node) after
    /// [`Self::check_refs`] saw it is refused by the store; the answer is the 400
    /// [`Self::check_refs`] gives now that it is missing, as if it had been from the start.
    async fn put(&self, obj: &GatewayObject, create: bool, named: &[Named]) -> AppResult<bool> {
        match self.store.put_gateway_object(obj, create).await {
            Err(tessera_store::StoreError::NotFound(tessera_store::Entity::Referenced)) if !named.is_empty() => {
                self.check_refs(obj.org_id, named).await?;
                Err(FieldError::new(&named[0].field, "an object it names was deleted meanwhile").into())
            }
            other => Ok(other?),
        }
    }

    fn parse<T: GatewayResource>(&self, body: Value) -> AppResult<T> {
        if T::KIND == GatewayKind::CaCertificate {
            // PEM is lines: `cert` may hold line breaks (its own check refuses other controls).
            let mut rest = body.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("cert");
            }
            check_text(&rest)?;
        } else {
            check_text(&body)?;
        }
        let mut t: T = serde_json::from_value(body).map_err(|e| FieldError::new("body", e.to_string()))?;
        t.normalize(self.now())?;
        Ok(t)
    }

    /// The object as it will be stored, once its references exist and (for a plugin) no other
    /// session plugin holds its scope; a plugin's write lock comes with it, to hold until the
    /// write is done.
    async fn checked<T: GatewayResource>(
        &self,
        org: OrgId,
        t: &T,
        id: Uuid,
        (created, updated): (Timestamp, Timestamp),
    ) -> AppResult<(GatewayObject, Vec<Named>, Option<tokio::sync::MutexGuard<'_, ()>>)> {
        let value = serde_json::to_value(t).map_err(|e| AppError::Internal(e.to_string()))?;
        let named = named(T::KIND, &value);
        self.check_refs(org, &named).await?;
        // Plugin writes on this node go one at a time, so that a second session plugin in a
        // scope is refused naming the one that holds it. Across nodes (or should this check
        // be passed twice), the store's unique `scope_key` refuses it (its migration 12).
        let one_writer = if T::KIND == GatewayKind::Plugin { Some(self.plugin_writes.lock().await) } else { None };
        self.check_one_session_plugin(org, T::KIND, id, &value).await?;
        let name = t.name().map(str::to_owned);
        let scope_key = scope_key(T::KIND, &value);
        let refs = refs(&named);
        let body = value.to_string();
        let obj = GatewayObject { org_id: org, kind: T::KIND, id, name, scope_key, refs, body, created, updated };
        Ok((obj, named, one_writer))
    }

    /// Creates an object from its JSON (`POST /v2/gateway/{kind}s`).
    pub async fn create_gateway_object<T: GatewayResource>(&self, caller: &Caller, body: Value) -> AppResult<T> {
        self.change(caller, actions(T::KIND)[0], "*", T::KIND.as_str()).await?;
        let mut t: T = self.parse(body)?;
        self.fill_secret(&mut t)?;
        let now = self.now();
        let id = *t.id_mut().get_or_insert_with(|| self.new_id(Uuid::from_bytes));
        let (c, u) = t.stamps();
        (*c, *u) = (now.0, now.0);
        let (obj, named, _one_writer) = self.checked(caller.org_id, &t, id, (now, now)).await?;
        trail::retarget(id);
        self.put(&obj, true, &named).await?;
        self.gateway_changed();
        Ok(t)
    }

    /// The secret is generated on create when none is given (Kong's default), so every node
    /// shares it through the store.
    fn fill_secret<T: GatewayResource>(&self, t: &mut T) -> AppResult<()> {
        if T::KIND == GatewayKind::Plugin {
            let mut v = serde_json::to_value(&*t).map_err(|e| AppError::Internal(e.to_string()))?;
            if v["config"]["secret"].as_str().is_none_or(str::is_empty) {
                v["config"]["secret"] = Value::String(self.random_secret());
                *t = serde_json::from_value(v).map_err(|e| AppError::Internal(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Refuses a second `session` plugin on one route, one service, or globally (Kong refuses
    /// the same with a unique constraint): two would fight over one cookie.
    async fn check_one_session_plugin(&self, org: OrgId, kind: GatewayKind, id: Uuid, value: &Value) -> AppResult<()> {
        if kind != GatewayKind::Plugin {
            return Ok(());
        }
        let scope = plugin_scope(value);
        let plugins = self.store.list_gateway_objects(Some(org), GatewayKind::Plugin).await?;
        for other in plugins.iter().filter(|o| o.id != id) {
            let v: Value = serde_json::from_str(&other.body).unwrap_or_default();
            if v["name"] == "session" && plugin_scope(&v) == scope {
                let on = match scope {
                    (Some(r), Some(s)) => format!("route {r} with service {s}"),
                    (Some(r), None) => format!("route {r}"),
                    (None, Some(s)) => format!("service {s}"),
                    (None, None) => "every route (global)".into(),
                };
                return Err(AppError::Conflict(format!(
                    "a session plugin ({}) already applies to {on}; change that one instead",
                    other.id
                )));
            }
        }
        Ok(())
    }

    pub async fn get_gateway_object<T: GatewayResource>(&self, caller: &Caller, id: Uuid) -> AppResult<T> {
        caller.authorize(actions(T::KIND)[1], &id.to_string())?;
        let o = self
            .store
            .get_gateway_object(caller.org_id, T::KIND, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("{} not found", T::NOUN)))?;
        decode(&o)
    }

    pub async fn list_gateway_objects<T: GatewayResource>(&self, caller: &Caller) -> AppResult<Vec<T>> {
        caller.authorize(actions(T::KIND)[2], "*")?;
        let objects = self.store.list_gateway_objects(Some(caller.org_id), T::KIND).await?;
        objects.iter().map(decode).collect()
    }

    /// Replaces (`PUT`, `merge = false`) or patches (`PATCH`, `merge = true`) an object.
    pub async fn update_gateway_object<T: GatewayResource>(
        &self,
        caller: &Caller,
        id: Uuid,
        body: Value,
        merge: bool,
    ) -> AppResult<T> {
        self.change(caller, actions(T::KIND)[3], &id.to_string(), T::KIND.as_str()).await?;
        let stored = self
            .store
            .get_gateway_object(caller.org_id, T::KIND, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("{} not found", T::NOUN)))?;
        let mut value: Value = if merge {
            let mut v: Value = serde_json::from_str(&stored.body).map_err(|e| AppError::Internal(e.to_string()))?;
            merge_patch(&mut v, body);
            v
        } else {
            body
        };
        if let Some(given) = value.get("id").and_then(Value::as_str)
            && given != id.to_string()
        {
            return Err(FieldError::new("id", "cannot change an object's id").into());
        }
        value["id"] = Value::String(id.to_string());
        if T::KIND == GatewayKind::Plugin {
            keep_stored_secret(&mut value, &stored.body);
        }
        if let Some(v) = value.as_object_mut() {
            // A service's url is sugar for its parts; parts from before must not contradict it.
            if T::KIND == GatewayKind::Service && v.contains_key("url") {
                for k in ["protocol", "host", "port", "path"] {
                    v.remove(k);
                }
            }
        }
        let mut t: T = self.parse(value)?;
        self.fill_secret(&mut t)?;
        let now = self.now();
        let (c, u) = t.stamps();
        (*c, *u) = (stored.created.0, now.0);
        let (obj, named, _one_writer) = self.checked(caller.org_id, &t, id, (stored.created, now)).await?;
        if !self.put(&obj, false, &named).await? {
            return Err(AppError::NotFound(format!("{} not found", T::NOUN)));
        }
        self.gateway_changed();
        Ok(t)
    }

    /// Deletes an object. One that another still names cannot go (409 naming it: a service
    /// its routes, a CA certificate its services); plugins scoped to a deleted route or
    /// service go with it, as in Kong. The store decides both in the delete's transaction, so
    /// a write naming the object on another node either finds it gone (400) or keeps it.
    pub async fn delete_gateway_object<T: GatewayResource>(&self, caller: &Caller, id: Uuid) -> AppResult<()> {
        self.change(caller, actions(T::KIND)[4], &id.to_string(), T::KIND.as_str()).await?;
        let deleted = match self.store.delete_gateway_object(caller.org_id, T::KIND, id).await {
            Err(tessera_store::StoreError::Conflict(tessera_store::Conflict::GatewayInUse { .. })) => {
                return Err(self.in_use(caller.org_id, T::KIND, id).await?);
            }
            other => other?,
        };
        if !deleted {
            return Err(AppError::NotFound(format!("{} not found", T::NOUN)));
        }
        self.gateway_changed();
        Ok(())
    }

    /// The 409 for an object the store would not delete, naming the first object that names it.
    async fn in_use(&self, org: OrgId, kind: GatewayKind, id: Uuid) -> AppResult<AppError> {
        let (holders, undo) = match kind {
            GatewayKind::Service => (GatewayKind::Route, "delete or move those routes first"),
            GatewayKind::CaCertificate => (GatewayKind::Service, "remove it from their ca_certificates first"),
            // Only plugins name routes, and they go with it.
            GatewayKind::Route | GatewayKind::Plugin => (kind, ""),
        };
        let objects =
            if holders == kind { vec![] } else { self.store.list_gateway_objects(Some(org), holders).await? };
        let using: Vec<&GatewayObject> = objects.iter().filter(|o| o.refs.contains(&id)).collect();
        let Some(first) = using.first() else {
            // The one that named it went between the delete and this read.
            return Ok(AppError::Conflict(format!("{} {id} was in use; try again", noun(kind))));
        };
        let name = first.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
        Ok(AppError::Conflict(format!(
            "{} {id} is used by {} {}{name} (and {} more); {undo}",
            noun(kind),
            holders.as_str(),
            first.id,
            using.len() - 1
        )))
    }

    /// Every organization's objects, for the gateway's routing table.
    pub async fn gateway_snapshot(&self, _by: System) -> AppResult<GatewaySnapshot> {
        let services = self.store.list_gateway_objects(None, GatewayKind::Service).await?;
        let routes = self.store.list_gateway_objects(None, GatewayKind::Route).await?;
        let plugins = self.store.list_gateway_objects(None, GatewayKind::Plugin).await?;
        let cas = self.store.list_gateway_objects(None, GatewayKind::CaCertificate).await?;
        Ok(GatewaySnapshot {
            services: decode_all(&services),
            routes: decode_all(&routes),
            plugins: decode_all(&plugins),
            ca_certificates: decode_all(&cas),
        })
    }

    // ---- sessions created by the gateway ------------------------------------------------

    /// A fresh session id (the gateway picks it before sealing a server-stored cookie).
    pub fn new_session_id(&self) -> SessionId {
        let mut random = [0u8; 10];
        self.with_rng(|r| r.fill_bytes(&mut random));
        SessionId::time_ordered(self.now().0.max(0) as u64 * 1000, random)
    }

    /// A gateway session record (server storage): the user signed in through the gateway.
    pub fn gateway_session_record(
        &self,
        user: &User,
        client: &str,
        key: &TokenDigest,
        absolute: Option<i64>,
    ) -> Session {
        let now = self.now();
        let lifetime = absolute.filter(|a| *a > 0).unwrap_or(400 * 86_400);
        Session::start(SessionStart {
            id: self.new_session_id(),
            org_id: user.org_id,
            handle: key.handle(),
            kind: SessionKind::Gateway,
            principal: Principal::user(user.id, user.email.as_str()),
            auth_method: "password".into(),
            source_ip: client.to_owned(),
            duration: lifetime,
            idle_timeout: None,
            now,
        })
    }

    pub async fn create_gateway_session(
        &self,
        _by: System,
        session: &Session,
        key: &TokenDigest,
        data: &str,
        key_expires: Timestamp,
    ) -> AppResult<()> {
        let event = self.gateway_session_event(session, SIGN_IN);
        trail::scope(event, self.store.create_gateway_session(session, key, data, key_expires)).await.0?;
        tracing::info!(session = %session.id, user = ?session.user_id(), "signed in through the gateway");
        Ok(())
    }

    /// The live key, or None when it is unknown, stale, or its session has ended.
    /// Keys are cached for a few seconds under the credential epoch: ended sessions are caught
    /// by the ended-set on every hit, renewals and logouts on this node drop the old key's
    /// entry, and a renewal on another node shortens an old key here at most
    /// [`GATEWAY_KEY_TTL`] late.
    pub async fn find_gateway_key(&self, _by: System, key: &TokenDigest) -> AppResult<Option<GatewayKey>> {
        let now = self.now();
        let epoch = self.cache.epochs().map(|(credentials, _)| credentials);
        let hit = epoch.and_then(|e| self.cache.gateway_keys.get(key).filter(|c| c.0 == e).map(|c| c.1.clone()));
        let k = match hit {
            Some(k) => k,
            None => {
                let Some(k) = self.store.find_gateway_key(key).await? else { return Ok(None) };
                if let Some(e) = epoch {
                    self.cache.gateway_keys.insert(*key, std::sync::Arc::new((e, k.clone())));
                }
                k
            }
        };
        if k.expires <= now
            || self.cache.is_ended(k.session.id)
            || !matches!(k.session.liveness(now, now), tessera_domain::session::Liveness::Alive)
            || k.user.status != tessera_domain::user::UserStatus::Active
        {
            return Ok(None);
        }
        Ok(Some(k))
    }

    /// Moves a server-stored gateway session to its renewed key; the old key keeps working
    /// until `stale_until` for requests already in flight. False when the session ended meanwhile.
    pub async fn renew_gateway_session(&self, _by: System, renewal: GatewayRenewal) -> AppResult<bool> {
        let rekey = GatewayRekey {
            org_id: renewal.org,
            session: renewal.session,
            old: renewal.old,
            old_expires: renewal.stale_until,
            new: renewal.new,
            data: renewal.data,
            new_expires: renewal.expires,
            now: self.now(),
        };
        let done = self.store.rekey_gateway_session(&rekey).await?;
        self.cache.gateway_keys.invalidate(&rekey.old);
        Ok(done)
    }

    /// The user a gateway session names, if it may still be signed in (exists and is active).
    /// Answered from the same cache and change feed as the API's credentials: disabling or
    /// deleting a user bumps the credential epoch (here, or on another node through the feed),
    /// and while the feed is lost every call reads the store. A store error is an error, not
    /// a refusal.
    pub async fn gateway_user(&self, _by: System, org: OrgId, user: UserId) -> AppResult<Option<std::sync::Arc<User>>> {
        let epoch = self.cache.epochs().map(|(credentials, _)| credentials);
        let hit = epoch.and_then(|e| self.cache.gateway_users.get(&(org, user)).filter(|c| c.0 == e));
        let found = match hit {
            Some((_, found)) => found,
            None => {
                let found = self.store.get_user(org, user).await?.map(std::sync::Arc::new);
                if let Some(e) = epoch {
                    self.cache.gateway_users.insert((org, user), (e, found.clone()));
                }
                found
            }
        };
        Ok(found.filter(|u| u.status == UserStatus::Active))
    }

    /// The names of the user's groups, in membership order, for a new gateway session
    /// (`X-Authenticated-Groups`). Complete or an error: a session is never started with
    /// fewer groups than the user has.
    pub async fn gateway_groups(&self, _by: System, user: &User) -> AppResult<Vec<String>> {
        Ok(self.store.group_names_of_user(user.org_id, user.id).await?)
    }

    /// Logout through the gateway: the key goes and the record ends (`logout`).
    pub async fn end_gateway_session(
        &self,
        _by: System,
        org: OrgId,
        id: SessionId,
        key: &TokenDigest,
    ) -> AppResult<()> {
        self.store.delete_gateway_key(key).await?;
        self.cache.gateway_keys.invalidate(key);
        let Some(session) = self.store.get_session(org, id).await? else { return Ok(()) };
        let event = self.gateway_session_event(&session, SIGN_OUT);
        let (ended, _) = trail::scope(event, self.store.end_session(org, id, EndReason::Logout, self.now())).await;
        if let Some(s) = ended? {
            self.cache.session_ended(s.id, s.expires);
        }
        Ok(())
    }

    /// The event of a gateway session's start or end: the gateway listener has no request
    /// scope, so the client's address is the one the session recorded.
    fn gateway_session_event(&self, session: &Session, action: &str) -> tessera_domain::audit::AuditEvent {
        let actor = crate::audit::Actor {
            kind: tessera_domain::audit::ActorKind::GatewaySession,
            org: session.org_id,
            id: session.user_id().map(|u| u.to_string()).unwrap_or_default(),
            email: session.principal.display_name().to_owned(),
            credential: session.id.to_string(),
        };
        let mut e = self.audit_event(actor, action, "session", session.id, tessera_domain::audit::AuditResult::Success);
        if e.source_ip.is_empty() {
            e.source_ip = session.source_ip.clone();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use serde_json::json;

    use super::*;
    use crate::{BootstrapOutcome, BootstrapRequest, ManualClock};

    const ADMIN_KEY: &str = "unit-admin-key-0123456789abcdef0123456789";

    async fn app() -> (App, Caller, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let clock = ManualClock::new(Timestamp(1_893_492_000));
        let app = App::new(Arc::new(store), Arc::new(clock), Box::new(rand::rngs::StdRng::seed_from_u64(7)));
        let request = BootstrapRequest {
            organization_name: "unit".into(),
            admin_email: "admin@example.com".into(),
            api_key: Some(ADMIN_KEY.into()),
        };
        assert!(matches!(app.bootstrap(System::BOOTSTRAP, request).await.unwrap(), BootstrapOutcome::Created { .. }));
        let admin = app.authenticate(ADMIN_KEY, None).await.unwrap();
        (app, admin, dir)
    }

    /// What a create does, in two halves with another node's delete between them: checked
    /// while everything it names exists, then written once something it names is gone.
    async fn written_after_a_delete<T: GatewayResource>(
        app: &App,
        admin: &Caller,
        body: Value,
        delete: impl std::future::Future<Output = AppResult<()>>,
    ) -> FieldError {
        let t: T = app.parse(body).unwrap();
        let (id, now) = (Uuid::from_u128(0xfeed), app.now());
        let (obj, named, one_writer) = app.checked(admin.org_id, &t, id, (now, now)).await.unwrap();
        drop(one_writer);
        delete.await.unwrap();
        match app.put(&obj, true, &named).await {
            Err(AppError::Invalid(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_write_whose_named_object_went_meanwhile_is_a_400_naming_that_field() {
        let (app, admin, _dir) = app().await;
        let ca_pem = {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
        };
        let ca: CaCertificate = app.create_gateway_object(&admin, json!({"cert": ca_pem})).await.unwrap();
        let svc = json!({"name": "s", "url": "http://127.0.0.1:1"});
        let svc: Service = app.create_gateway_object(&admin, svc).await.unwrap();
        let (ca, svc) = (ca.id.unwrap(), svc.id.unwrap());
        let route: Route =
            app.create_gateway_object(&admin, json!({"paths": ["/r"], "service": {"id": svc}})).await.unwrap();
        let route = route.id.unwrap();

        // A plugin on the route and the service, whose route goes: named by its field.
        let plugin = json!({"name": "session", "route": {"id": route}, "service": {"id": svc}});
        let e =
            written_after_a_delete::<Plugin>(&app, &admin, plugin, app.delete_gateway_object::<Route>(&admin, route))
                .await;
        assert_eq!((e.field.as_str(), e.message), ("route.id", format!("Route {route} does not exist")));
        // A route whose service goes.
        let body = json!({"paths": ["/x"], "service": {"id": svc}});
        let e = written_after_a_delete::<Route>(&app, &admin, body, app.delete_gateway_object::<Service>(&admin, svc))
            .await;
        assert_eq!((e.field.as_str(), e.message), ("service.id", format!("Service {svc} does not exist")));
        // A service whose second CA certificate goes.
        let other: CaCertificate = {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let pem = p.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem();
            app.create_gateway_object(&admin, json!({"cert": pem})).await.unwrap()
        };
        let other = other.id.unwrap();
        let body = json!({"name": "t", "url": "https://127.0.0.1:1", "ca_certificates": [ca, other]});
        let delete = app.delete_gateway_object::<CaCertificate>(&admin, other);
        let e = written_after_a_delete::<Service>(&app, &admin, body, delete).await;
        assert_eq!(e.field, "ca_certificates[1]");
        // Nothing was written.
        for kind in [GatewayKind::Plugin, GatewayKind::Route, GatewayKind::Service] {
            assert!(app.store.get_gateway_object(admin.org_id, kind, Uuid::from_u128(0xfeed)).await.unwrap().is_none());
        }
    }
}
