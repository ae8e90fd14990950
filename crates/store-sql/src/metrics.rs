//! What a SQL store counts for Prometheus: every statement's latency and errors, labelled by
//! its verb and main table, and the change feed's health.
//!
//! The label set is fixed and small: a statement's kind is its verb ([`VERBS`]) and the table
//! it reads or writes ([`TABLES`], from the schema), derived from its SQL text — once per
//! shared statement (kept in the [`crate::Stmt`]), or per call for the few statements built at
//! run time (a scan of the text, no allocation). Never the raw SQL, never a value. The cells
//! are a fixed array per store instance (several nodes share a test process), so recording a
//! statement is two clock reads and a few relaxed atomic additions: no lock, no allocation.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use tessera_store::{StoreError, StoreResult};

/// What a statement does. `commit` is a transaction's commit (on SQLite, one group commit of
/// the writer thread), `notify` a change-feed notice (PostgreSQL).
pub const VERBS: [&str; 7] = ["select", "insert", "update", "delete", "commit", "notify", "other"];
/// The tables of the schema, then `other` (a table not listed here) and `none` (a statement
/// that names no table: a commit, an advisory lock).
pub const TABLES: [&str; 20] = [
    "api_keys",
    "audit_events",
    "gateway_keys",
    "gateway_objects",
    "gateway_refs",
    "group_members",
    "groups",
    "oidc_issuers",
    "organizations",
    "policies",
    "policy_attachments",
    "role_group_assignments",
    "role_trusts",
    "role_user_assignments",
    "roles",
    "session_limits",
    "sessions",
    "users",
    "other",
    "none",
];
const OTHER_TABLE: usize = TABLES.len() - 2;
const NO_TABLE: usize = TABLES.len() - 1;
const KINDS: usize = VERBS.len() * TABLES.len();

/// The kind of a statement: its verb and main table, as an index into a store's cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementKind(u16);

impl StatementKind {
    /// A transaction's commit.
    pub const COMMIT: Self = Self::new(4, NO_TABLE);
    /// A change-feed notice.
    pub const NOTIFY: Self = Self::new(5, NO_TABLE);

    const fn new(verb: usize, table: usize) -> Self {
        Self((verb * TABLES.len() + table) as u16)
    }

    pub fn verb(self) -> &'static str {
        VERBS[self.0 as usize / TABLES.len()]
    }

    pub fn table(self) -> &'static str {
        TABLES[self.0 as usize % TABLES.len()]
    }

    /// The kind of `sql`: the first verb outside parentheses (after a `WITH`'s common table
    /// expressions), and the table after its `FROM` / `INTO` / `UPDATE`. A `SELECT` with no
    /// `FROM` of its own (`SELECT EXISTS (SELECT 1 FROM users …)`) takes the first `FROM` inside.
    pub fn of(sql: &str) -> Self {
        let mut verb = None;
        let mut want_table = false;
        let mut inner_from: Option<&str> = None;
        let mut after_inner_from = false;
        for (word, depth) in Words::new(sql) {
            if after_inner_from {
                inner_from.get_or_insert(word);
                after_inner_from = false;
            }
            if depth > 0 {
                after_inner_from = word.eq_ignore_ascii_case("FROM") && inner_from.is_none();
                continue;
            }
            if want_table {
                return Self::new(verb.unwrap_or(6), table_index(word));
            }
            match verb {
                None => {
                    verb = ["SELECT", "INSERT", "UPDATE", "DELETE"].iter().position(|v| word.eq_ignore_ascii_case(v));
                    // `UPDATE t`: the table is the next word.
                    want_table = verb == Some(2);
                }
                Some(0 | 3) if word.eq_ignore_ascii_case("FROM") => want_table = true,
                Some(1) if word.eq_ignore_ascii_case("INTO") => want_table = true,
                Some(_) => {}
            }
        }
        match verb {
            Some(0) => Self::new(0, inner_from.map_or(NO_TABLE, table_index)),
            Some(v) => Self::new(v, OTHER_TABLE),
            None => Self::new(6, NO_TABLE),
        }
    }
}

fn table_index(word: &str) -> usize {
    TABLES[..OTHER_TABLE].iter().position(|t| t.eq_ignore_ascii_case(word)).unwrap_or(OTHER_TABLE)
}

/// The words of a SQL text (identifiers and keywords; punctuation splits them), each with
/// the parenthesis depth it stands at. String literals are skipped.
struct Words<'a> {
    sql: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Self { sql, at: 0, depth: 0 }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = (&'a str, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.sql.as_bytes();
        while self.at < b.len() {
            let c = b[self.at];
            if c.is_ascii_alphanumeric() || c == b'_' {
                let start = self.at;
                while self.at < b.len() && (b[self.at].is_ascii_alphanumeric() || b[self.at] == b'_') {
                    self.at += 1;
                }
                return Some((&self.sql[start..self.at], self.depth));
            }
            match c {
                b'(' => self.depth += 1,
                b')' => self.depth = self.depth.saturating_sub(1),
                b'\'' => {
                    self.at += 1;
                    while self.at < b.len() && b[self.at] != b'\'' {
                        self.at += 1;
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
        None
    }
}

/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied).
pub const BOUNDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A latency histogram of relaxed atomics. Bucket `i` counts latencies in
/// `(BOUNDS[i-1], BOUNDS[i]]` (not cumulative); rendering sums them as Prometheus wants.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, nanos: u64) {
        let seconds = nanos as f64 / 1e9;
        let b = BOUNDS.iter().position(|&x| seconds <= x).unwrap_or(BOUNDS.len());
        self.buckets[b].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// The `_bucket`, `_sum` and `_count` lines of `name` with `labels` (`a="b",…` or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut running = 0;
        for (bound, n) in BOUNDS.iter().zip(&self.buckets) {
            running += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {running}");
        }
        running += self.buckets[BOUNDS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {running}");
        let sum = self.sum_nanos.load(Relaxed) as f64 / 1e9;
        let braces = |s: &str| if s.is_empty() { String::new() } else { format!("{{{s}}}") };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {running}", braces(labels));
    }
}

/// The error kinds counted, by [`error_kind`].
pub const ERRORS: [&str; 6] = ["conflict", "not_found", "invalid", "unavailable", "contended", "internal"];

fn error_kind(e: &StoreError) -> usize {
    match e {
        StoreError::Conflict(_) => 0,
        StoreError::NotFound(_) => 1,
        StoreError::Invalid(_) => 2,
        StoreError::Unavailable(_) => 3,
        StoreError::Contended(_) => 4,
        StoreError::Internal(_) => 5,
    }
}

#[derive(Default)]
struct Cell {
    latency: Histogram,
    errors: [AtomicU64; ERRORS.len()],
}

/// One store's statement metrics.
pub struct StatementMetrics {
    cells: Box<[Cell]>,
}

impl Default for StatementMetrics {
    fn default() -> Self {
        Self { cells: (0..KINDS).map(|_| Cell::default()).collect() }
    }
}

impl std::fmt::Debug for StatementMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementMetrics").finish_non_exhaustive()
    }
}

impl StatementMetrics {
    /// Counts one statement of `kind` that started at `started`, and its error if it failed.
    pub fn observe(&self, kind: StatementKind, started: Instant, error: Option<&StoreError>) {
        let cell = &self.cells[kind.0 as usize];
        cell.latency.observe(started.elapsed().as_nanos() as u64);
        if let Some(e) = error {
            cell.errors[error_kind(e)].fetch_add(1, Relaxed);
        }
    }

    /// Runs `f` (one statement) and counts it.
    pub fn time<T>(&self, kind: StatementKind, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        let started = Instant::now();
        let r = f();
        self.observe(kind, started, r.as_ref().err());
        r
    }

    /// Runs `f` (one statement) and counts it.
    pub async fn time_async<T>(
        &self,
        kind: StatementKind,
        f: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let r = f.await;
        self.observe(kind, started, r.as_ref().err());
        r
    }

    /// How many statements of `verb` on `table` ran (for tests).
    pub fn count(&self, verb: &str, table: &str) -> u64 {
        let v = VERBS.iter().position(|x| *x == verb);
        let t = TABLES.iter().position(|x| *x == table);
        match (v, t) {
            (Some(v), Some(t)) => self.cells[StatementKind::new(v, t).0 as usize].latency.count(),
            _ => 0,
        }
    }

    /// `tessera_store_statement_duration_seconds` and `tessera_store_statement_errors_total`
    /// in the text format, for the kinds that ran at least once.
    pub fn render(&self, out: &mut String) {
        let kinds = || {
            self.cells.iter().enumerate().filter(|(_, c)| c.latency.count() > 0).map(|(i, c)| {
                let k = StatementKind(i as u16);
                (format!("verb=\"{}\",table=\"{}\"", k.verb(), k.table()), c)
            })
        };
        out.push_str(
            "# HELP tessera_store_statement_duration_seconds Time the store spent on a statement, by verb and main table.\n\
             # TYPE tessera_store_statement_duration_seconds histogram\n",
        );
        for (labels, c) in kinds() {
            c.latency.render(out, "tessera_store_statement_duration_seconds", &labels);
        }
        out.push_str(
            "# HELP tessera_store_statement_errors_total Statements that failed, by verb, main table and error kind.\n\
             # TYPE tessera_store_statement_errors_total counter\n",
        );
        for (labels, c) in kinds() {
            for (kind, n) in ERRORS.iter().zip(&c.errors) {
                let n = n.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "tessera_store_statement_errors_total{{{labels},kind=\"{kind}\"}} {n}");
                }
            }
        }
    }
}

/// The change feed's gauges in the text format: `tessera_change_feed_up` and
/// `tessera_change_feed_losses_total` (a backend with a heartbeat adds the lag itself).
pub fn render_feed(out: &mut String, up: bool, losses: u64) {
    let _ = writeln!(
        out,
        "# HELP tessera_change_feed_up Whether this node receives the store's change feed (its caches are on).\n\
         # TYPE tessera_change_feed_up gauge\ntessera_change_feed_up {}\n\
         # HELP tessera_change_feed_losses_total Times the change feed was lost (caches off until it is back).\n\
         # TYPE tessera_change_feed_losses_total counter\ntessera_change_feed_losses_total {losses}",
        u8::from(up)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(sql: &str) -> (&'static str, &'static str) {
        let k = StatementKind::of(sql);
        (k.verb(), k.table())
    }

    #[test]
    fn statements_are_named_by_verb_and_table() {
        assert_eq!(kind("SELECT id, name FROM users WHERE org_id = $1"), ("select", "users"));
        assert_eq!(kind("SELECT EXISTS (SELECT 1 FROM roles WHERE org_id = $1 AND id = $2)"), ("select", "roles"));
        assert_eq!(kind("select count(*) from sessions s join users u on u.id = s.user_id"), ("select", "sessions"));
        assert_eq!(kind("INSERT INTO groups (org_id, id) VALUES ($1, $2)"), ("insert", "groups"));
        assert_eq!(kind("UPDATE sessions s SET status = $3 WHERE s.id = ANY($2)"), ("update", "sessions"));
        assert_eq!(kind("DELETE FROM group_members WHERE org_id = ?1"), ("delete", "group_members"));
        assert_eq!(
            kind("WITH audit AS (INSERT INTO audit_events (a) VALUES ($1)) INSERT INTO sessions (b) VALUES ($2)"),
            ("insert", "sessions")
        );
        assert_eq!(kind("SELECT u.id FROM (SELECT id FROM users) u"), ("select", "other"));
        assert_eq!(kind("SELECT pg_advisory_xact_lock(hashtext($1))"), ("select", "none"));
        assert_eq!(kind("INSERT INTO nowhere VALUES ('FROM users')"), ("insert", "other"));
        assert_eq!(kind("VACUUM"), ("other", "none"));
    }

    #[test]
    fn a_statement_is_counted_with_its_error() {
        let m = StatementMetrics::default();
        let k = StatementKind::of("INSERT INTO users (id) VALUES ($1)");
        let _ = m.time(k, || Ok::<_, StoreError>(()));
        let _ = m.time(k, || Err::<(), _>(StoreError::Conflict(tessera_store::Conflict::Other("x".into()))));
        assert_eq!(m.count("insert", "users"), 2);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("tessera_store_statement_duration_seconds_count{verb=\"insert\",table=\"users\"} 2"));
        assert!(
            out.contains("tessera_store_statement_errors_total{verb=\"insert\",table=\"users\",kind=\"conflict\"} 1")
        );
        assert!(!out.contains("table=\"sessions\""), "kinds that never ran are not rendered");
    }
}
