//! The session query language: OData-style `$filter`, `$orderby` and `$select`, parsed into a
//! typed AST checked against a schema of fields.
//!
//! Grammar (keywords are lowercase, as in OData):
//!
//! ```text
//! expr     := and ("or" and)*
//! and      := unary ("and" unary)*
//! unary    := "not" unary | primary
//! primary  := "(" expr ")"
//!           | ("contains" | "startswith" | "endswith") "(" field "," string ")"
//!           | field ("eq"|"ne"|"gt"|"ge"|"lt"|"le") value
//!           | field "in" "(" value ("," value)* ")"
//! value    := string | integer | true | false | null | rfc3339-time
//!           | "now()" (("add"|"sub") iso8601-duration)*
//! ```
//!
//! Strings are single-quoted with `''` for a quote. `now()` is resolved at parse time from the
//! `now` the caller passes in, so a query is a pure function of its text and that instant.
//! Errors carry the 0-based character position of the offending token.

mod apply;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::time::Timestamp;

pub use apply::{AggFunc, Aggregate, Apply, Cell, MAX_GROUPS, parse_apply};
pub use parser::{parse_filter, parse_orderby, parse_select};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Int,
    Bool,
    Time,
}

impl FieldType {
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Text => "a string",
            FieldType::Int => "a number",
            FieldType::Bool => "a boolean",
            FieldType::Time => "a time",
        }
    }
}

/// A queryable field: its API name, its type, and whether it may be null. (Where a backend
/// keeps it is the backend's business: the SQL backends map names to columns themselves.)
#[derive(Debug, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub nullable: bool,
}

#[derive(Debug)]
pub struct Schema {
    pub fields: &'static [FieldDef],
}

impl Schema {
    /// The field named `name`: its own name (`user_id_or_email`) or, as Intersight spells
    /// it, that name in PascalCase (`UserIdOrEmail`). Nothing else: not camelCase, not a
    /// different case.
    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.name == name || is_pascal_of(name, f.name))
    }
    fn names(&self) -> String {
        self.fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
    }
}

/// Whether `name` is `snake` in PascalCase: `client_ip_address` → `ClientIpAddress`.
pub fn is_pascal_of(name: &str, snake: &str) -> bool {
    let mut want = snake.split('_').flat_map(|w| {
        let mut cs = w.chars();
        cs.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(cs)
    });
    let mut got = name.chars();
    loop {
        match (got.next(), want.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(Timestamp),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFunc {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Compare { field: &'static FieldDef, op: CmpOp, value: Value },
    In { field: &'static FieldDef, values: Vec<Value> },
    Func { func: StrFunc, field: &'static FieldDef, value: String },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy {
    pub field: &'static FieldDef,
    pub descending: bool,
}

/// A rejected query: where (0-based character offset) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self { position, message: message.into() }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.position, self.message)
    }
}

impl std::error::Error for FilterError {}

/// Longest filter text accepted.
pub const MAX_FILTER_LEN: usize = 4_096;
/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 32;
/// Most values in one `in (...)` list.
pub const MAX_IN_VALUES: usize = 100;
