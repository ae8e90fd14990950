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

/// The objects `value` (a service) names and needs to exist: its CA certificates, sorted.
fn refs(kind: GatewayKind, value: &Value) -> Vec<Uuid> {
    if kind != GatewayKind::Service {
        return vec![];
    }
    let mut ids: Vec<Uuid> =
        value["ca_certificates"].as_array().into_iter().flatten().filter_map(|v| v.as_str()?.parse().ok()).collect();
    ids.sort_unstable();
    ids
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

    /// 32 fresh random bytes for the gateway (the sign-in form's token).
    pub fn gateway_nonce(&self) -> [u8; 32] {
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

    async fn check_refs(&self, org: OrgId, value: &Value) -> AppResult<()> {
        for (field, kind, noun) in
            [("service", GatewayKind::Service, "Service"), ("route", GatewayKind::Route, "Route")]
        {
            if let Some(id) = value.get(field).and_then(|r| r.get("id")).and_then(Value::as_str) {
                let id: Uuid = id.parse().map_err(|_| FieldError::new(format!("{field}.id"), "must be a UUID"))?;
                if self.store.get_gateway_object(org, kind, id).await?.is_none() {
                    return Err(FieldError::new(format!("{field}.id"), format!("{noun} {id} does not exist")).into());
                }
            }
        }
        let cas = value.get("ca_certificates").and_then(Value::as_array).into_iter().flatten();
        for (i, id) in cas.enumerate() {
            let field = format!("ca_certificates[{i}]");
            let id: Uuid =
                id.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| FieldError::new(&field, "must be a UUID"))?;
            if self.store.get_gateway_object(org, GatewayKind::CaCertificate, id).await?.is_none() {
                return Err(FieldError::new(field, format!("CA certificate {id} does not exist")).into());
            }
        }
        Ok(())
    }

    /// Writes an object with the objects it names. A named CA certificate deleted (on any
    /// node) after [`Self::check_refs`] saw it is refused by the store: a 400 as if it had
    /// been missing from the start.
    async fn put(&self, obj: &GatewayObject, create: bool) -> AppResult<bool> {
        match self.store.put_gateway_object(obj, create).await {
            Err(tessera_store::StoreError::NotFound(tessera_store::Entity::Referenced)) if !obj.refs.is_empty() => {
                Err(FieldError::new("ca_certificates", "a CA certificate it names was deleted meanwhile").into())
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
    ) -> AppResult<(GatewayObject, Option<tokio::sync::MutexGuard<'_, ()>>)> {
        let value = serde_json::to_value(t).map_err(|e| AppError::Internal(e.to_string()))?;
        self.check_refs(org, &value).await?;
        // Plugin writes on this node go one at a time, so that a second session plugin in a
        // scope is refused naming the one that holds it. Across nodes (or should this check
        // be passed twice), the store's unique `scope_key` refuses it (its migration 12).
        let one_writer = if T::KIND == GatewayKind::Plugin { Some(self.plugin_writes.lock().await) } else { None };
        self.check_one_session_plugin(org, T::KIND, id, &value).await?;
        let name = t.name().map(str::to_owned);
        let scope_key = scope_key(T::KIND, &value);
        let refs = refs(T::KIND, &value);
        let body = value.to_string();
        let obj = GatewayObject { org_id: org, kind: T::KIND, id, name, scope_key, refs, body, created, updated };
        Ok((obj, one_writer))
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
        let (obj, _one_writer) = self.checked(caller.org_id, &t, id, (now, now)).await?;
        trail::retarget(id);
        self.put(&obj, true).await?;
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
        let (obj, _one_writer) = self.checked(caller.org_id, &t, id, (stored.created, now)).await?;
        if !self.put(&obj, false).await? {
            return Err(AppError::NotFound(format!("{} not found", T::NOUN)));
        }
        self.gateway_changed();
        Ok(t)
    }

    /// Deletes an object. A service still used by routes cannot go (409); plugins scoped to a
    /// deleted route or service go with it, as in Kong.
    pub async fn delete_gateway_object<T: GatewayResource>(&self, caller: &Caller, id: Uuid) -> AppResult<()> {
        self.change(caller, actions(T::KIND)[4], &id.to_string(), T::KIND.as_str()).await?;
        let org = caller.org_id;
        let scope = match T::KIND {
            GatewayKind::Service => Some("service"),
            GatewayKind::Route => Some("route"),
            GatewayKind::Plugin | GatewayKind::CaCertificate => None,
        };
        if T::KIND == GatewayKind::CaCertificate {
            self.refuse_named_ca(org, id).await?;
        }
        if T::KIND == GatewayKind::Service {
            let routes = self.store.list_gateway_objects(Some(org), GatewayKind::Route).await?;
            let using: Vec<Route> = decode_all::<Route>(&routes)
                .into_iter()
                .map(|(_, r)| r)
                .filter(|r| r.service.is_some_and(|s| s.id == id))
                .collect();
            if let Some(r) = using.first() {
                return Err(AppError::Conflict(format!(
                    "Service {id} is used by route {} (and {} more); delete or move those routes first",
                    r.id.map(|i| i.to_string()).unwrap_or_default(),
                    using.len() - 1
                )));
            }
        }
        let deleted = match self.store.delete_gateway_object(org, T::KIND, id).await {
            // A service on another node named it after the check above: name that service.
            Err(tessera_store::StoreError::Conflict(tessera_store::Conflict::GatewayInUse { .. })) => {
                self.refuse_named_ca(org, id).await?;
                return Err(AppError::Conflict(format!("CA certificate {id} is used by a service")));
            }
            other => other?,
        };
        if !deleted {
            return Err(AppError::NotFound(format!("{} not found", T::NOUN)));
        }
        if let Some(field) = scope {
            let plugins = self.store.list_gateway_objects(Some(org), GatewayKind::Plugin).await?;
            for o in plugins {
                let v: Value = serde_json::from_str(&o.body).unwrap_or_default();
                if v[field]["id"].as_str() == Some(&id.to_string()) {
                    self.store.delete_gateway_object(org, GatewayKind::Plugin, o.id).await?;
                }
            }
        }
        self.gateway_changed();
        Ok(())
    }

    /// A CA certificate that services name cannot go (409 naming the first of them).
    async fn refuse_named_ca(&self, org: OrgId, id: Uuid) -> AppResult<()> {
        let services = self.store.list_gateway_objects(Some(org), GatewayKind::Service).await?;
        let using: Vec<&GatewayObject> = services.iter().filter(|s| s.refs.contains(&id)).collect();
        if let Some(s) = using.first() {
            let name = s.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
            return Err(AppError::Conflict(format!(
                "CA certificate {id} is used by service {}{name} (and {} more); remove it from their \
                 ca_certificates first",
                s.id,
                using.len() - 1
            )));
        }
        Ok(())
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
