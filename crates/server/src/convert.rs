//! Conversions between wire types and the app's types: the one place they meet.

use std::net::IpAddr;

use crate::json::{Object, Written};
use tessera_api_types as wire;
use tessera_app::{GroupInput, NewUser, PolicyInput, RoleInput, TrustInput, UserPatch};
use tessera_domain::Timestamp;
use tessera_domain::oidc::{IssuerKeys, IssuerUri, JwkSet, OidcClaims};
use tessera_domain::page::Page;
use tessera_domain::policy::Policy;
use tessera_domain::policy::{DocumentUse, PolicyDocument, PolicyDocumentJson};
use tessera_domain::role::{MaxSessionDuration, Role, RoleType};
use tessera_domain::session::{Session, SessionState};
use tessera_domain::trust::{RoleTrust, TimeOfDay, TrustConditions, TrustPrincipal, parse_ip_range};
use tessera_domain::user::{self, ApiKey, Email, Group, User, UserStatus};
use tessera_domain::{DomainError, FieldError};

use crate::error::ApiError;
use crate::extract::{body_id, page_link};

pub fn meta<T>(page: &Page<T>) -> wire::Meta {
    wire::Meta {
        total: page.total,
        links: wire::Links { next: page_link(page.next.clone()), prev: page_link(page.prev.clone()) },
    }
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
}

pub fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(s).ok_or_else(|| {
        ApiError::invalid(field, format!("{field}: '{s}' is not an RFC 3339 time such as 2027-01-01T00:00:00Z"))
    })
}

pub fn parse_ip(field: &str, s: &str) -> Result<IpAddr, ApiError> {
    s.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ApiError::invalid(field, format!("{field}: '{s}' is not an IP address")))
}

// ---- users ---------------------------------------------------------------------------------

pub fn user_view(u: &User) -> wire::UserView {
    wire::UserView {
        id: u.id.to_string(),
        email: u.email.as_str().to_owned(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        name: format!("{} {}", u.first_name, u.last_name).trim().to_owned(),
        status: u.status.as_str().to_owned(),
        date_created: ts(u.date_created),
    }
}

pub fn new_user(b: wire::UserCreate) -> Result<NewUser, ApiError> {
    Ok(NewUser {
        email: Email::parse(&b.email)?,
        first_name: user::text("first_name", &b.first_name, 100)?,
        last_name: user::text("last_name", &b.last_name, 100)?,
        password: b.password,
    })
}

pub fn user_patch(b: wire::UserUpdate) -> Result<UserPatch, ApiError> {
    Ok(UserPatch {
        email: b.email.as_deref().map(Email::parse).transpose()?,
        first_name: b.first_name.as_deref().map(|s| user::text("first_name", s, 100)).transpose()?,
        last_name: b.last_name.as_deref().map(|s| user::text("last_name", s, 100)).transpose()?,
        status: b.status.as_deref().map(UserStatus::parse).transpose()?,
        password: b.password,
    })
}

pub fn api_key_view(k: &ApiKey, secret: Option<String>) -> wire::ApiKeyView {
    wire::ApiKeyView {
        id: k.id.to_string(),
        user_id: k.user_id.to_string(),
        name: k.name.clone(),
        api_key: secret,
        date_created: ts(k.date_created),
        date_expire: k.date_expire.map(ts),
    }
}

// ---- groups and policies -------------------------------------------------------------------

pub fn group_view(g: &Group) -> wire::GroupView {
    wire::GroupView {
        id: g.id.to_string(),
        display_name: g.display_name.clone(),
        description: g.description.clone(),
        date_created: ts(g.date_created),
    }
}

pub fn group_input(b: wire::GroupInput) -> Result<GroupInput, ApiError> {
    Ok(GroupInput {
        display_name: user::name("display_name", &b.display_name, 100)?,
        description: user::description("description", &b.description, 1000)?,
    })
}

pub fn policy_view(p: &Policy) -> wire::PolicyView {
    wire::PolicyView {
        id: p.id.to_string(),
        name: p.name.clone(),
        description: p.description.clone(),
        policy_document: serde_json::to_value(p.document.to_json()).unwrap_or_default(),
        version: p.document.version.clone(),
        is_system_policy: false,
        date_created: ts(p.date_created),
    }
}

pub fn policy_input(b: wire::PolicyInput) -> Result<PolicyInput, ApiError> {
    let document = written_document(b.policy_document, DocumentUse::Managed, "policy_document")?;
    Ok(PolicyInput {
        name: user::name("name", &b.name, 100)?,
        description: user::description("description", &b.description, 1000)?,
        document,
    })
}

/// A policy document a caller sends, validated with the bounds of its use; its errors name
/// `field.<path>` (the whole `field` when it is too large).
fn written_document(v: serde_json::Value, used_as: DocumentUse, field: &str) -> Result<PolicyDocument, DomainError> {
    let json: PolicyDocumentJson = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = format!("{field}.{}", e.path());
        FieldError::new(path.trim_end_matches('.'), e.into_inner().to_string())
    })?;
    PolicyDocument::from_written_json(json, used_as, field)
}

// ---- roles and trusts ----------------------------------------------------------------------

pub fn role_view(r: &Role) -> wire::RoleView {
    wire::RoleView {
        id: r.id.to_string(),
        name: r.name.clone(),
        description: r.description.clone(),
        role_type: r.role_type.as_str().to_owned(),
        max_session_duration: r.max_session_duration.secs(),
        date_created: ts(r.date_created),
    }
}

pub fn role_input(b: wire::RoleInput) -> Result<RoleInput, ApiError> {
    Ok(RoleInput {
        name: user::name("name", &b.name, 100)?,
        description: user::description("description", &b.description, 1000)?,
        role_type: RoleType::parse(&b.role_type)?,
        max_session_duration: match b.max_session_duration {
            Some(s) => MaxSessionDuration::new(s)?,
            None => MaxSessionDuration::DEFAULT,
        },
    })
}

pub fn trust_view(t: &RoleTrust) -> wire::TrustView {
    let (user, group, issuer) = match t.principal {
        TrustPrincipal::User(u) => (Some(u.to_string()), None, None),
        TrustPrincipal::Group(g) => (None, Some(g.to_string()), None),
        TrustPrincipal::OidcIssuer(i) => (None, None, Some(i.to_string())),
    };
    wire::TrustView {
        id: t.id.to_string(),
        role_id: t.role_id.to_string(),
        trust_type: t.trust_type.clone(),
        trusted_user_id: user,
        trusted_group_id: group,
        trusted_oidc_issuer_id: issuer,
        conditions: wire::Conditions {
            ip_address: t.conditions.ip_ranges.iter().map(|n| n.to_string()).collect(),
            time_of_day: t.conditions.time_of_day.as_ref().map(|w| wire::TimeOfDay {
                start: w.hours.start.into(),
                end: w.hours.end.into(),
                timezone: (w.zone.offset_secs != 0).then(|| w.zone.name.clone()),
                days_of_week: w.day_names().map(|d| d.into_iter().map(str::to_owned).collect()),
            }),
            oidc_claims: (!t.conditions.oidc_claims.is_empty()).then(|| t.conditions.oidc_claims.to_json()),
        },
        valid_until: t.valid_until.map(ts),
        date_created: ts(t.date_created),
    }
}

pub fn trust_input(b: wire::TrustInput) -> Result<TrustInput, ApiError> {
    let principal = match (&b.trusted_user_id, &b.trusted_group_id, &b.trusted_oidc_issuer_id) {
        (Some(u), None, None) => TrustPrincipal::User(body_id("trusted_user_id", u)?),
        (None, Some(g), None) => TrustPrincipal::Group(body_id("trusted_group_id", g)?),
        (None, None, Some(i)) => TrustPrincipal::OidcIssuer(body_id("trusted_oidc_issuer_id", i)?),
        _ => {
            return Err(ApiError::invalid(
                "trusted_user_id",
                "a trust names exactly one principal: trusted_user_id, trusted_group_id or trusted_oidc_issuer_id",
            ));
        }
    };
    let trust_type = b.trust_type.unwrap_or_else(|| "TemporaryAssumption".into());
    if trust_type != "TemporaryAssumption" {
        return Err(ApiError::invalid(
            "trust_type",
            format!("trust_type: only \"TemporaryAssumption\" is supported, found \"{trust_type}\""),
        ));
    }
    let c = b.conditions.unwrap_or_default();
    if c.ip_address.len() > 100 {
        return Err(ApiError::invalid("conditions.ip_address", "conditions.ip_address: at most 100 entries"));
    }
    let ip_ranges = c
        .ip_address
        .iter()
        .enumerate()
        .map(|(i, s)| parse_ip_range(s).map_err(|m| ApiError::invalid(format!("conditions.ip_address[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let time_of_day = c
        .time_of_day
        .map(|w| TimeOfDay::new(Some(w.start), Some(w.end), w.timezone.as_deref(), w.days_of_week.as_deref()))
        .transpose()?;
    let oidc_claims = match &c.oidc_claims {
        None => OidcClaims::default(),
        Some(v) => OidcClaims::parse(v, "conditions.oidc_claims")?,
    };
    let conditions = TrustConditions { ip_ranges, time_of_day, oidc_claims };
    conditions.check_for(&principal)?;
    Ok(TrustInput {
        role_id: body_id("role_id", &b.role_id)?,
        trust_type,
        principal,
        conditions,
        valid_until: b.valid_until.as_deref().map(|s| parse_time("valid_until", s)).transpose()?,
    })
}

// ---- sessions ------------------------------------------------------------------------------

pub fn assumed_view(s: &Session, token: Option<String>, now: Timestamp) -> wire::AssumedRoleView {
    let (status, end_reason) = s.status_at(now);
    wire::AssumedRoleView {
        id: s.id.to_string(),
        session_token: token,
        user_id: s.user_id().map(|u| u.to_string()).unwrap_or_default(),
        oidc_issuer_id: s.principal.oidc_issuer().map(|i| i.to_string()),
        role_id: s.role_id.map(|r| r.to_string()).unwrap_or_default(),
        session_name: s.session_name.clone(),
        duration: s.duration,
        ip_address: s.bound_ip.map(|ip| ip.to_string()),
        conditions_met: s.conditions_met.clone(),
        remaining_duration: s.remaining_duration(now),
        auth_method: s.auth_method.clone(),
        source_ip: s.source_ip.clone(),
        date_assumed: ts(s.created),
        date_expires: ts(s.expires),
        status: status.as_str().to_owned(),
        end_reason: end_reason.map(|r| r.as_str().to_owned()),
        policy: s.session_policy.as_ref().and_then(|d| serde_json::to_value(d.to_json()).ok()),
    }
}

/// A session policy given at assume: a policy document like any other, bounded as a session
/// policy (its errors name `policy.<path>`, or `policy` when it is too large).
pub fn session_policy(v: Option<serde_json::Value>) -> Result<Option<PolicyDocument>, DomainError> {
    v.map(|v| written_document(v, DocumentUse::Session, "policy")).transpose()
}

pub fn iam_session_view(s: &Session) -> wire::IamSessionView {
    wire::IamSessionView {
        moid: s.id.to_string(),
        session_id: s.handle.clone(),
        kind: s.kind.as_str().to_owned(),
        user_id: s.user_id().map(|u| u.to_string()).unwrap_or_default(),
        user_id_or_email: s.principal.display_name().to_owned(),
        auth_method: s.auth_method.clone(),
        oidc_issuer_id: s.principal.oidc_issuer().map(|i| i.to_string()),
        role: s.role_name.clone(),
        role_id: s.role_id.map(|r| r.to_string()),
        session_name: s.session_name.clone(),
        client_ip_address: s.source_ip.clone(),
        create_time: ts(s.created),
        mod_time: ts(s.modified),
        expiration: ts(s.expires),
        idle_time_expiration: s.idle_deadline(s.last_activity).map(ts),
        end_time: s.ended.map(ts),
        status: s.status.as_str().to_owned(),
        end_reason: s.end_reason.map(|r| r.as_str().to_owned()),
        failed_logins: s.failed_logins,
        last_login_time: s.last_login_time.map(ts),
        last_login_client: s.last_login_client.clone(),
        account_moid: s.org_id.to_string(),
    }
}

/// One value of a session's JSON, borrowed from the session.
enum Cell<'a> {
    Str(&'a str),
    Id(uuid::Uuid),
    Time(Timestamp),
    Int(i64),
    Null,
}

impl serde::Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Str(s) => ser.serialize_str(s),
            Cell::Id(u) => ser.serialize_str(u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())),
            Cell::Time(t) => ser.serialize_str(t.rfc3339().as_str()),
            Cell::Int(i) => ser.serialize_i64(*i),
            Cell::Null => ser.serialize_none(),
        }
    }
}

/// [`wire::IamSessionView`]'s JSON written straight from a session, optionally only the
/// `$select`ed fields under the names the request gave them. The same keys, order and values
/// as serializing [`iam_session_view`] (a test holds the two together), without copying the
/// session's text or formatting its ids and times into `String`s first: the answer to "who am
/// I?" and every row of the session query.
pub struct SessionJson<'a> {
    pub session: &'a Session,
    pub select: Option<&'a [crate::extract::Selected]>,
    /// What has changed since `session` was stored, written in its place (the caller's own
    /// session, whose record a cache shares); `None`: the record as it is.
    pub state: Option<SessionState>,
}

impl<'a> SessionJson<'a> {
    /// The record as it is.
    pub fn of(session: &'a Session, select: Option<&'a [crate::extract::Selected]>) -> Self {
        Self { session, select, state: None }
    }

    /// The view's fields in its declaration order; `None` is a field the view leaves out
    /// (a session without an OIDC issuer has no `oidc_issuer_id`).
    fn cells(&self) -> [(&'static str, Option<Cell<'_>>); 22] {
        let s = self.session;
        let now = self.state.unwrap_or(SessionState {
            last_activity: s.last_activity,
            status: s.status,
            ended: s.ended,
            end_reason: s.end_reason,
        });
        let opt_time = |t: Option<Timestamp>| Some(t.map_or(Cell::Null, Cell::Time));
        [
            ("moid", Some(Cell::Id(s.id.0))),
            ("session_id", Some(Cell::Str(&s.handle))),
            ("kind", Some(Cell::Str(s.kind.as_str()))),
            ("user_id", Some(s.user_id().map_or(Cell::Str(""), |u| Cell::Id(u.0)))),
            ("user_id_or_email", Some(Cell::Str(s.principal.display_name()))),
            ("auth_method", Some(Cell::Str(&s.auth_method))),
            ("oidc_issuer_id", s.principal.oidc_issuer().map(|i| Cell::Id(i.0))),
            ("role", Some(Cell::Str(&s.role_name))),
            ("role_id", Some(s.role_id.map_or(Cell::Null, |r| Cell::Id(r.0)))),
            ("session_name", Some(Cell::Str(&s.session_name))),
            ("client_ip_address", Some(Cell::Str(&s.source_ip))),
            ("create_time", Some(Cell::Time(s.created))),
            ("mod_time", Some(Cell::Time(s.modified))),
            ("expiration", Some(Cell::Time(s.expires))),
            ("idle_time_expiration", opt_time(s.idle_deadline(now.last_activity))),
            ("end_time", opt_time(now.ended)),
            ("status", Some(Cell::Str(now.status.as_str()))),
            ("end_reason", Some(now.end_reason.map_or(Cell::Null, |r| Cell::Str(r.as_str())))),
            ("failed_logins", Some(Cell::Int(s.failed_logins))),
            ("last_login_time", opt_time(s.last_login_time)),
            ("last_login_client", Some(Cell::Str(&s.last_login_client))),
            ("account_moid", Some(Cell::Id(s.org_id.0))),
        ]
    }
}

impl SessionJson<'_> {
    /// Each field the answer holds, under the name it is written with, in order.
    fn each<E>(&self, mut entry: impl FnMut(&str, &Cell<'_>) -> Result<(), E>) -> Result<(), E> {
        let cells = self.cells();
        match self.select {
            None => {
                for (key, cell) in &cells {
                    if let Some(cell) = cell {
                        entry(key, cell)?;
                    }
                }
            }
            Some(keep) => {
                for field in keep {
                    if let Some((_, Some(cell))) = cells.iter().find(|(key, _)| *key == field.key) {
                        entry(&field.name, cell)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The same JSON as serializing the whole view (no `$select`), written straight into
    /// `out` (see [`crate::json::Object`]).
    fn write_all(&self, out: &mut Object<'_>) {
        for (key, cell) in self.cells() {
            match cell {
                Some(Cell::Str(s)) => out.str(key, s),
                Some(Cell::Id(u)) => out.id(key, u),
                Some(Cell::Time(t)) => out.time(key, t),
                Some(Cell::Int(i)) => out.int(key, i),
                Some(Cell::Null) => out.null(key),
                None => {}
            }
        }
    }
}

impl serde::Serialize for SessionJson<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(None)?;
        self.each(|key, cell| map.serialize_entry(key, cell))?;
        map.end()
    }
}

/// `{"session": ...}`, as [`wire::SessionEnvelope`] writes it.
#[derive(serde::Serialize)]
pub struct SessionEnvelopeJson<'a> {
    pub session: SessionJson<'a>,
}

impl<'a> SessionEnvelopeJson<'a> {
    pub fn of(session: &'a Session) -> Self {
        Self { session: SessionJson::of(session, None) }
    }

    /// The caller's own session: its shared record with its current state written in.
    pub fn current(current: &'a tessera_app::CurrentSession) -> Self {
        Self { session: SessionJson { session: &current.record, select: None, state: Some(current.state) } }
    }

    /// The answer, written without serde (byte for byte the same).
    pub fn written(&self) -> Written {
        Written::with(|out| {
            let mut envelope = Object::begin(out);
            let mut session = envelope.object("session");
            self.session.write_all(&mut session);
            session.end();
            envelope.end();
        })
    }
}

/// An active token's introspection (RFC 7662), borrowed from the caller it names: written
/// byte for byte as [`wire::IntrospectionResponse`] serializes (a test holds the two
/// together), without making a `String` of each id first.
pub struct Introspected<'a> {
    pub token_type: &'static str,
    /// A user's id; a workload has none, and its subject is its `sub`.
    pub user: Option<uuid::Uuid>,
    pub username: &'a str,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub sid: Option<uuid::Uuid>,
    pub org: uuid::Uuid,
    pub role: Option<uuid::Uuid>,
}

impl Introspected<'_> {
    /// `{"active": false}`: every token that is not active, whatever the reason.
    pub fn inactive() -> Written {
        Written::with(|out| {
            let mut o = Object::begin(out);
            o.bool("active", false);
            o.end();
        })
    }

    pub fn written(&self) -> Written {
        Written::with(|out| {
            let mut o = Object::begin(out);
            o.bool("active", true);
            o.str("token_type", self.token_type);
            match self.user {
                Some(u) => o.id("sub", u),
                None => o.str("sub", self.username),
            }
            o.str("username", self.username);
            if let Some(exp) = self.exp {
                o.int("exp", exp);
            }
            if let Some(iat) = self.iat {
                o.int("iat", iat);
            }
            o.str("iss", ISSUER);
            if let Some(sid) = self.sid {
                o.id("sid", sid);
            }
            o.id("org_id", self.org);
            if let Some(role) = self.role {
                o.id("role_id", role);
            }
            o.end();
        })
    }

    /// The documented wire type with the same content (what the test holds the writer to).
    #[cfg(test)]
    fn view(&self) -> wire::IntrospectionResponse {
        wire::IntrospectionResponse {
            active: true,
            token_type: Some(self.token_type.into()),
            sub: Some(self.user.map_or_else(|| self.username.to_owned(), |u| u.to_string())),
            username: Some(self.username.to_owned()),
            exp: self.exp,
            iat: self.iat,
            iss: Some(ISSUER.into()),
            sid: self.sid.map(|s| s.to_string()),
            org_id: Some(self.org.to_string()),
            role_id: self.role.map(|r| r.to_string()),
        }
    }
}

/// The `iss` of every introspection.
const ISSUER: &str = "tessera";

pub fn login_lock_view(l: &tessera_app::LoginLock) -> wire::LoginLockView {
    wire::LoginLockView {
        user_id: l.user_id.to_string(),
        failed_logins: l.failed_logins,
        locked: l.locked,
        locked_until: l.locked_until.map(ts),
        lock_count: l.lock_count,
    }
}

/// The keys of [`wire::IamSessionView`], for `$select`.
pub const SESSION_VIEW_FIELDS: &[&str] = &[
    "moid",
    "session_id",
    "kind",
    "user_id",
    "user_id_or_email",
    "role",
    "role_id",
    "session_name",
    "client_ip_address",
    "create_time",
    "mod_time",
    "expiration",
    "idle_time_expiration",
    "end_time",
    "status",
    "end_reason",
    "failed_logins",
    "last_login_time",
    "last_login_client",
    "account_moid",
];

// ---- OIDC issuers --------------------------------------------------------------------------

/// An issuer to create or replace: a `uri`, and inline keys (one flat, or `keys`) or none
/// (discovered).
pub fn issuer_input(b: wire::oidc::IssuerInput) -> Result<tessera_app::IssuerInput, ApiError> {
    let source = b.source.clone().unwrap_or_else(|| "external".into());
    if !tessera_domain::oidc::ISSUER_SOURCES.contains(&source.as_str()) {
        return Err(ApiError::invalid(
            "source",
            format!("source: only \"external\" issuers can be registered here, found \"{source}\""),
        ));
    }
    let uri = b.uri.as_deref().ok_or_else(|| ApiError::invalid("uri", "uri: the issuer's identifier is required"))?;
    let uri = IssuerUri::parse(uri, "uri")?;
    let flat = [&b.kty, &b.kid, &b.n, &b.e, &b.crv, &b.x, &b.y, &b.alg, &b.use_].iter().any(|m| m.is_some());
    let keys = match (flat, b.keys) {
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "keys",
                "keys: give one key flat (kty, n, e, ...) or several in keys, not both",
            ));
        }
        (false, None) => IssuerKeys::Discovered,
        (false, Some(keys)) => {
            let set = JwkSet::parse_strict(&serde_json::json!({ "keys": keys }))
                .map_err(|e| ApiError::invalid("keys", format!("keys: {e}")))?;
            IssuerKeys::Inline(set)
        }
        (true, None) => {
            let mut jwk = serde_json::Map::new();
            for (name, v) in [
                ("kty", &b.kty),
                ("kid", &b.kid),
                ("n", &b.n),
                ("e", &b.e),
                ("crv", &b.crv),
                ("x", &b.x),
                ("y", &b.y),
                ("alg", &b.alg),
                ("use", &b.use_),
            ] {
                if let Some(v) = v {
                    jwk.insert(name.into(), serde_json::Value::String(v.clone()));
                }
            }
            let set = JwkSet::parse_strict(&serde_json::json!({ "keys": [jwk] })).map_err(|e| {
                ApiError::invalid("kty", format!("the inline key: {}", e.0.trim_start_matches("keys[0]: ")))
            })?;
            IssuerKeys::Inline(set)
        }
    };
    Ok(tessera_app::IssuerInput { source, uri, keys })
}

pub fn issuer_view(s: &tessera_app::IssuerState) -> wire::oidc::IssuerView {
    let i = &s.issuer;
    let first = match &i.keys {
        IssuerKeys::Inline(set) => set.keys.first().map(|k| k.json.clone()),
        IssuerKeys::Discovered => None,
    };
    let member = |name: &str| first.as_ref().and_then(|j| j.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    wire::oidc::IssuerView {
        id: i.id.to_string(),
        source: i.source.clone(),
        uri: i.uri.as_str().to_owned(),
        kty: member("kty"),
        kid: member("kid"),
        n: member("n"),
        e: member("e"),
        alg: member("alg"),
        use_: member("use"),
        keys_source: if first.is_some() { "inline" } else { "discovered" }.into(),
        jwks_fetched_at: s.jwks_fetched_at.map(ts),
        jwks_expires_at: s.jwks_expires_at.map(ts),
        date_created: ts(i.date_created),
    }
}

pub fn jwks_view(set: &JwkSet) -> wire::oidc::Jwks {
    wire::oidc::Jwks { keys: set.keys.iter().map(|k| serde_json::Value::Object(k.json.clone())).collect() }
}

// ---- role assignments and the caller's own view --------------------------------------------

pub fn assignment_view(a: &tessera_domain::role::RoleAssignment) -> wire::assignments::RoleAssignmentView {
    use tessera_domain::role::Assignee;
    let (user_id, group_id, group_name) = match a.assignee {
        Assignee::User(u) => (Some(u.to_string()), None, None),
        Assignee::Group(g) => (None, Some(g.to_string()), Some(a.assignee_name.clone())),
    };
    wire::assignments::RoleAssignmentView {
        user_id,
        group_id,
        group_name,
        role_id: a.role.id.to_string(),
        role_name: a.role.name.clone(),
        role_description: a.role.description.clone(),
        role_type: a.role.role_type.as_str().to_owned(),
        date_assigned: ts(a.date_assigned),
    }
}

pub fn caller_policy_view(p: &tessera_app::CallerPolicy) -> wire::assignments::UserPolicyView {
    use tessera_app::PolicySource;
    let (source, from_group, from_role) = match p.source {
        PolicySource::User => ("user", None, None),
        PolicySource::Group(g) => ("group", Some(g.to_string()), None),
        PolicySource::Role(r) => ("role", None, Some(r.to_string())),
    };
    wire::assignments::UserPolicyView { policy: policy_view(&p.policy), source: source.into(), from_group, from_role }
}

/// The `meta` of a list answered whole (no further page).
pub fn whole_list_meta(total: usize) -> wire::Meta {
    wire::Meta { total: total as u64, links: wire::Links::default() }
}

/// One value of an `$apply` answer: times as RFC 3339, like every time in the API.
pub fn cell(c: tessera_domain::filter::Cell) -> serde_json::Value {
    use tessera_domain::filter::Cell;
    match c {
        Cell::Null => serde_json::Value::Null,
        Cell::Text(s) => s.into(),
        Cell::Int(n) => n.into(),
        Cell::Float(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
        Cell::Bool(b) => b.into(),
        Cell::Time(t) => ts(t).into(),
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::ids::{OidcIssuerId, OrgId, RoleId, SessionId, UserId};
    use tessera_domain::session::{EndReason, Principal, SessionKind, SessionStart, SessionStatus};

    use super::*;
    use crate::extract::Selected;

    fn sessions() -> Vec<Session> {
        let start = |kind, principal, idle| {
            Session::start(SessionStart {
                id: SessionId::from_random([1; 16]),
                org_id: OrgId::from_random([2; 16]),
                handle: "h\u{e9}\"andle".into(),
                kind,
                principal,
                auth_method: "password".into(),
                source_ip: "203.0.113.7".into(),
                duration: 3_600,
                idle_timeout: idle,
                now: Timestamp(1_795_000_000),
            })
        };
        let login = start(SessionKind::Login, Principal::user(UserId::from_random([3; 16]), "a@b.c"), Some(900));
        let mut role = start(
            SessionKind::AssumedRole,
            Principal::Workload { issuer: OidcIssuerId::from_random([4; 16]), subject: "repo:x/y".into() },
            None,
        );
        role.role_id = Some(RoleId::from_random([5; 16]));
        role.role_name = "deployer".into();
        role.session_name = "ci\n<run>".into();
        let mut ended = login.clone();
        ended.status = SessionStatus::Terminated;
        ended.ended = Some(Timestamp(1_795_000_100));
        ended.end_reason = Some(EndReason::Terminated);
        ended.last_login_time = Some(Timestamp(1_794_000_000));
        ended.failed_logins = 3;
        vec![login, role, ended]
    }

    /// The caller's own session, written from the shared record and its current state, is
    /// byte for byte the record observed and copied: alive with newer activity, timed out
    /// for idleness, past its deadline, and ended before.
    #[test]
    fn the_current_session_from_a_shared_record_is_the_observed_copys_json() {
        let t0 = 1_795_000_000;
        for (i, s) in sessions().into_iter().enumerate() {
            let record = std::sync::Arc::new(s);
            for (now, seen) in [(t0 + 60, t0 + 50), (t0 + 2_000, t0 + 10), (t0 + 4_000, t0 + 3_900), (t0, t0)] {
                let current = tessera_app::CurrentSession {
                    state: record.state_at(Timestamp(now), Timestamp(seen)),
                    record: record.clone(),
                };
                let mut copy = Session::clone(&record);
                copy.last_activity = copy.last_activity.max(Timestamp(seen));
                let copy = copy.observe(Timestamp(now));
                let shared = serde_json::to_string(&SessionEnvelopeJson::current(&current)).unwrap();
                assert_eq!(SessionEnvelopeJson::current(&current).written().text(), shared);
                assert_eq!(
                    shared,
                    serde_json::to_string(&SessionEnvelopeJson::of(&copy)).unwrap(),
                    "session {i} at {now}"
                );
                assert_eq!(current.to_session(), copy, "session {i} at {now}");
            }
        }
    }

    /// The borrowed writer answers byte for byte what the documented view serializes to, for
    /// every kind of session (with and without an issuer, a role, an end).
    #[test]
    fn session_json_is_the_views_json() {
        for s in sessions() {
            let view = serde_json::to_string(&iam_session_view(&s)).unwrap();
            let direct = serde_json::to_string(&SessionJson::of(&s, None)).unwrap();
            assert_eq!(direct, view);
            let envelope = serde_json::to_string(&wire::SessionEnvelope { session: iam_session_view(&s) }).unwrap();
            assert_eq!(serde_json::to_string(&SessionEnvelopeJson::of(&s)).unwrap(), envelope);
            assert_eq!(SessionEnvelopeJson::of(&s).written().text(), envelope);
        }
    }

    /// An introspection is written as its wire type serializes, for every kind of token:
    /// a user's login or role session, an API key (no session, no expiry), a workload whose
    /// subject needs escaping, and an inactive token.
    #[test]
    fn introspection_is_the_wire_types_json() {
        let id = |n: u128| uuid::Uuid::from_u128(n);
        let cases = [
            Introspected {
                token_type: "login_session",
                user: Some(id(1)),
                username: "a@b.c",
                exp: Some(1_795_000_900),
                iat: Some(1_795_000_000),
                sid: Some(id(2)),
                org: id(3),
                role: None,
            },
            Introspected {
                token_type: "role_session",
                user: Some(id(1)),
                username: "a\"b@c.d",
                exp: Some(1),
                iat: Some(0),
                sid: Some(id(2)),
                org: id(3),
                role: Some(id(4)),
            },
            Introspected {
                token_type: "api_key",
                user: Some(id(1)),
                username: "a@b.c",
                exp: None,
                iat: None,
                sid: None,
                org: id(3),
                role: None,
            },
            Introspected {
                token_type: "role_session",
                user: None,
                username: "repo:x/y\n\u{1}é",
                exp: Some(-5),
                iat: None,
                sid: Some(id(2)),
                org: id(3),
                role: Some(id(4)),
            },
        ];
        for c in &cases {
            assert_eq!(c.written().text(), serde_json::to_string(&c.view()).unwrap());
        }
        let inactive = wire::IntrospectionResponse { active: false, ..Default::default() };
        assert_eq!(Introspected::inactive().text(), serde_json::to_string(&inactive).unwrap());
    }

    /// `$select` keeps the named fields in the request's order under the request's names, as
    /// projecting the view's map did.
    #[test]
    fn session_json_projects_selected_fields() {
        let select = [
            Selected { key: "status".into(), name: "Status".into() },
            Selected { key: "moid".into(), name: "moid".into() },
            Selected { key: "end_time".into(), name: "EndTime".into() },
        ];
        for s in sessions() {
            let m = match serde_json::to_value(iam_session_view(&s)).unwrap() {
                serde_json::Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            };
            let projected = crate::extract::project(m, Some(&select));
            let direct = serde_json::to_value(SessionJson::of(&s, Some(&select))).unwrap();
            assert_eq!(direct, serde_json::Value::Object(projected));
            let text = serde_json::to_string(&SessionJson::of(&s, Some(&select))).unwrap();
            assert!(text.starts_with("{\"Status\":"), "{text}");
        }
    }
}
