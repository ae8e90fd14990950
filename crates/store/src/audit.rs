//! The audit trail's storage side: how an event rides along with the change it describes,
//! and the fields the audit query may name.
//!
//! The app *stages* an event in the current task's audit scope ([`stage`]) before it asks the
//! store for a change. Every backend takes it at its write entry point ([`take_staged`]) and,
//! when the write changed something ([`Changed`]), inserts it in the **same transaction** as
//! the change: a rolled-back change leaves no event, a committed one always has its event.
//! A write that changed nothing, or failed, puts the event back ([`restore`]) for the next.
//! Bookkeeping writes (sign-in claims, activity, sweeps) never take it.
//!
//! Scopes are opened per request by the server ([`request_scope`]) and, where there is no
//! request (bootstrap, the gateway listener), by the app around one change ([`scope`]).

use std::cell::RefCell;
use std::future::Future;

use tessera_domain::audit::AuditEvent;
use tessera_domain::filter::{FieldDef, FieldType, Schema};

use tessera_domain::page::PageToken;

/// Where a request came from, for the events it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address (trusted proxies honoured), rendered only when an event is made.
    pub source_ip: Option<std::net::IpAddr>,
    pub request_id: String,
}

#[derive(Debug, Default)]
struct Slot {
    origin: Origin,
    staged: Option<AuditEvent>,
    /// Events committed in this scope.
    recorded: u32,
}

tokio::task_local! {
    static SLOT: RefCell<Slot>;
}

/// Runs `fut` (one request) in its own audit scope, with where it came from. The future is
/// named ([`RequestScope`]) so that the server's edge layer can hold it without boxing.
pub fn request_scope<F: Future>(origin: Origin, fut: F) -> RequestScope<F> {
    RequestScope { inner: SLOT.scope(RefCell::new(Slot { origin, ..Slot::default() }), fut) }
}

pin_project_lite::pin_project! {
    /// A request's future in its own audit scope (see [`request_scope`]).
    pub struct RequestScope<F: Future> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RefCell<Slot>, F>,
    }
}

impl<F: Future> Future for RequestScope<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// Runs `fut` with `event` staged in a scope of its own (inheriting the origin of an
/// enclosing request, if any); answers the output and whether the event was committed.
pub async fn scope<F: Future>(event: AuditEvent, fut: F) -> (F::Output, bool) {
    let origin = origin().unwrap_or_default();
    let slot = Slot { origin, staged: Some(event), recorded: 0 };
    SLOT.scope(RefCell::new(slot), async {
        let out = fut.await;
        (out, SLOT.with(|s| s.borrow().recorded > 0))
    })
    .await
}

/// The origin of the current scope; `None` outside any scope.
pub fn origin() -> Option<Origin> {
    SLOT.try_with(|s| s.borrow().origin.clone()).ok()
}

/// Stages `event` for the next write that changes something. Outside any scope this does
/// nothing and answers false (the caller is not a request: a unit test, a tool).
pub fn stage(event: AuditEvent) -> bool {
    SLOT.try_with(|s| s.borrow_mut().staged = Some(event)).is_ok()
}

/// Sets the target id of the staged event (a create learns its id after authorizing).
pub fn retarget(id: impl std::fmt::Display) {
    let _ = SLOT.try_with(|s| {
        if let Some(e) = s.borrow_mut().staged.as_mut() {
            e.target_id = id.to_string();
        }
    });
}

/// Adds a reason to the staged event.
pub fn reason(reason: impl Into<String>) {
    let _ = SLOT.try_with(|s| {
        let mut s = s.borrow_mut();
        if let Some(e) = s.staged.take() {
            s.staged = Some(e.with_reason(reason));
        }
    });
}

/// For backends: takes the staged event at a write's entry point, synchronously, in the
/// caller's task (the SQLite writer thread cannot see the task's scope).
pub fn take_staged() -> Option<AuditEvent> {
    SLOT.try_with(|s| s.borrow_mut().staged.take()).ok().flatten()
}

/// For backends: the write did not commit its event (it failed or changed nothing); the
/// event waits for the next write in this scope.
pub fn restore(event: AuditEvent) {
    let _ = SLOT.try_with(|s| s.borrow_mut().staged = Some(event));
}

/// For backends: the write committed its event.
pub fn mark_recorded() {
    let _ = SLOT.try_with(|s| s.borrow_mut().recorded += 1);
}

/// Whether a write's answer means it changed something (and so carries the staged event).
pub trait Changed {
    fn changed(&self) -> bool;
}

impl Changed for () {
    fn changed(&self) -> bool {
        true
    }
}

/// `false`: no such row, already attached, already a member.
impl Changed for bool {
    fn changed(&self) -> bool {
        *self
    }
}

impl<T> Changed for Option<T> {
    fn changed(&self) -> bool {
        self.is_some()
    }
}

/// The sessions a write ended along the way (possibly none): the write itself happened.
impl<T> Changed for Vec<T> {
    fn changed(&self) -> bool {
        true
    }
}

impl Changed for u64 {
    fn changed(&self) -> bool {
        *self > 0
    }
}

const fn field(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef { name, ty, nullable: false }
}

static AUDIT_FIELDS: &[FieldDef] = &[
    field("moid", FieldType::Text),
    field("time", FieldType::Time),
    field("actor_kind", FieldType::Text),
    field("actor_id", FieldType::Text),
    field("actor_email", FieldType::Text),
    field("credential_id", FieldType::Text),
    field("action", FieldType::Text),
    field("target_kind", FieldType::Text),
    field("target_id", FieldType::Text),
    field("source_ip", FieldType::Text),
    field("request_id", FieldType::Text),
    field("result", FieldType::Text),
    field("reason", FieldType::Text),
    field("account_moid", FieldType::Text),
];

/// The fields of an audit event that `$filter` and `$orderby` may name. None is nullable, so
/// every single-key order continues by skip token.
pub static AUDIT_SCHEMA: Schema = Schema { fields: AUDIT_FIELDS };

#[derive(Debug, Clone, Default)]
pub struct AuditQueryResult {
    pub count: Option<u64>,
    pub events: Vec<AuditEvent>,
    pub next: Option<PageToken>,
}
