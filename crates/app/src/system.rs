//! Tessera acting on its own behalf.

/// The identity of work that no authenticated caller asked for: the sweeper, the first
/// start, the gateway signing a browser in. A method that takes a `System` instead of a
/// [`crate::Caller`] does not authorize, so its signature says so; only the wiring (which
/// starts these tasks) and the gateway (which authenticates browsers itself) make one.
/// The name shows in logs and, where such work leaves an event, in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct System(&'static str);

impl System {
    /// The periodic sweep: ends timed-out sessions, purges old records, prunes caches.
    pub const SWEEPER: System = System("sweeper");
    /// The first start: the organization, its administrator and key.
    pub const BOOTSTRAP: System = System("bootstrap");
    /// The gateway listener: sign-in pages, cookies and server-side gateway sessions.
    pub const GATEWAY: System = System("gateway");
    /// The change-feed follower: applies other nodes' changes to this node's caches.
    pub const FEED: System = System("feed");
    /// The operator on the server machine, acting on the database directly
    /// (`tessera admin create-key`): whoever can open the database is trusted with it.
    pub const OPERATOR: System = System("operator");

    pub fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}
