//! The SQL layer the SQLite and PostgreSQL backends share.
//!
//! Every statement is written here once, with PostgreSQL's `$N` placeholders, and rendered for
//! the backend's [`Dialect`] (SQLite reads `?N`). The few statements that really differ
//! between the two are written as a pair ([`Stmt::pair`]), so each difference is explicit and
//! in one place. The row codecs decode a domain value from any row type through [`SqlRow`],
//! which each backend implements for its driver's row (the shape of sqlx's `Row`). A backend
//! keeps only what is its own: connections, transactions, the change feed.

pub mod aggregate;
pub mod filter;
pub mod metrics;
pub mod paging;
pub mod reads;
pub mod record_query;
pub mod rows;
pub mod schema;
pub mod statements;

use std::borrow::Cow;
use std::sync::OnceLock;

pub use rows::SqlRow;

/// The SQL dialect a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement written once; rendered for SQLite on first use and kept.
pub struct Stmt {
    postgres: &'static str,
    /// A statement SQLite spells differently (`min`/`LEAST`, `LIMIT -1`, no `FOR UPDATE`).
    sqlite: Option<&'static str>,
    rendered: OnceLock<String>,
    /// Its verb and table for the metrics, derived from the text on first use.
    kind: OnceLock<metrics::StatementKind>,
}

impl Stmt {
    /// One statement for both dialects, with `$N` placeholders.
    pub const fn new(sql: &'static str) -> Self {
        Self { postgres: sql, sqlite: None, rendered: OnceLock::new(), kind: OnceLock::new() }
    }

    /// A statement the two dialects really spell differently (each still with `$N`).
    pub const fn pair(postgres: &'static str, sqlite: &'static str) -> Self {
        Self { postgres, sqlite: Some(sqlite), rendered: OnceLock::new(), kind: OnceLock::new() }
    }

    pub fn text(&'static self, d: Dialect) -> &'static str {
        match d {
            Dialect::Postgres => self.postgres,
            Dialect::Sqlite => {
                self.rendered.get_or_init(|| placeholders(self.sqlite.unwrap_or(self.postgres), d).into())
            }
        }
    }
}

impl Stmt {
    /// Its verb and main table (the same in both dialects).
    pub fn kind(&'static self) -> metrics::StatementKind {
        *self.kind.get_or_init(|| metrics::StatementKind::of(self.postgres))
    }
}

/// Rewrites `$N` placeholders for `d` (SQLite numbers them `?N`).
pub fn placeholders(sql: &str, d: Dialect) -> Cow<'_, str> {
    match d {
        Dialect::Postgres => Cow::Borrowed(sql),
        Dialect::Sqlite => Cow::Owned(sql.replace('$', "?")),
    }
}

/// The placeholder for parameter `n` (1-based) in `d`.
pub fn placeholder(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    }
}

/// A value bound to a placeholder. Nulls carry their type: PostgreSQL checks a parameter's
/// type even when it is null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    NullText,
    NullInt,
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::NullText, Value::Text)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Value::NullText, |s| Value::Text(s.to_owned()))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

/// The text of a query: a shared statement, or one built for the backend's dialect.
#[derive(Debug, Clone)]
pub enum Text {
    Stmt(&'static Stmt),
    Built(String),
}

impl std::fmt::Debug for Stmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.postgres)
    }
}

/// A statement with its values, and what a uniqueness violation means for the user.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: Text,
    pub params: Vec<Value>,
    /// What a unique violation of this statement collides with.
    pub conflict: Option<tessera_store::Conflict>,
    /// Violations whose database message names one of these columns or indexes collide with
    /// these instead (a table with several unique rules).
    pub named_conflicts: Vec<(&'static [&'static str], tessera_store::Conflict)>,
}

impl Query {
    pub fn new(stmt: &'static Stmt, params: Vec<Value>) -> Self {
        Self { text: Text::Stmt(stmt), params, conflict: None, named_conflicts: Vec::new() }
    }

    pub fn built(sql: String, params: Vec<Value>) -> Self {
        Self { text: Text::Built(sql), params, conflict: None, named_conflicts: Vec::new() }
    }

    pub fn on_conflict(mut self, what: tessera_store::Conflict) -> Self {
        self.conflict = Some(what);
        self
    }

    /// A unique violation whose database message contains one of `names` (the column or
    /// index as each dialect prints it) is `what`; others are [`Query::on_conflict`]'s.
    pub fn on_conflict_naming(mut self, names: &'static [&'static str], what: tessera_store::Conflict) -> Self {
        self.named_conflicts.push((names, what));
        self
    }

    pub fn sql(&self, d: Dialect) -> &str {
        match &self.text {
            Text::Stmt(s) => s.text(d),
            Text::Built(s) => s,
        }
    }

    /// Its verb and main table, for the metrics: kept for a shared statement, read from the
    /// text of a built one.
    pub fn kind(&self) -> metrics::StatementKind {
        match &self.text {
            Text::Stmt(s) => s.kind(),
            Text::Built(s) => metrics::StatementKind::of(s),
        }
    }

    /// Names a unique violation for the user; any other error passes unchanged.
    pub fn explain(&self, e: tessera_store::StoreError) -> tessera_store::StoreError {
        use tessera_store::{Conflict, StoreError};
        let StoreError::Conflict(found) = e else { return e };
        let named = match &found {
            Conflict::Other(m) => {
                self.named_conflicts.iter().find(|(names, _)| names.iter().any(|n| m.contains(n))).map(|(_, w)| w)
            }
            _ => None,
        };
        StoreError::Conflict(named.or(self.conflict.as_ref()).cloned().unwrap_or(found))
    }
}

/// Builds a `Vec<Value>` from expressions of any type with a `From` into [`Value`].
#[macro_export]
macro_rules! values {
    ($($v:expr),* $(,)?) => { vec![$($crate::Value::from($v)),*] };
}

/// The number of columns in a column list (counted, never hand-kept).
pub const fn width(cols: &str) -> usize {
    let b = cols.as_bytes();
    let (mut i, mut n) = (0, 1);
    while i < b.len() {
        if b[i] == b',' {
            n += 1;
        }
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    static S: Stmt = Stmt::new("SELECT a FROM t WHERE x = $1 AND y = $12");

    #[test]
    fn placeholders_render_per_dialect() {
        assert_eq!(S.text(Dialect::Postgres), "SELECT a FROM t WHERE x = $1 AND y = $12");
        assert_eq!(S.text(Dialect::Sqlite), "SELECT a FROM t WHERE x = ?1 AND y = ?12");
        assert_eq!(width("a, b, c"), 3);
    }
}
