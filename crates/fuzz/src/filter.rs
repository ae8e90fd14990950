//! The session query language under fuzz input: `$filter` parsed against the session schema
//! and turned into SQL for both backends, `$orderby` and `$select` parsed, as
//! `GET /v2/iam/sessions` does after percent-decoding the query string.

use tessera_domain::Timestamp;
use tessera_domain::filter::{parse_apply, parse_filter, parse_orderby, parse_select};
use tessera_store::SESSION_SCHEMA;
use tessera_store_sql::Dialect;
use tessera_store_sql::Value as SqlValue;
use tessera_store_sql::filter::{SESSION_COLUMNS, filter_to_sql};

/// The app's clock for `now()` (a Unix time in 2025).
const NOW: Timestamp = Timestamp(1_750_000_000);

/// Runs one input: the bytes (lossily UTF-8, as the server decodes a query value) are tried
/// as a filter, an order and a selection.
pub fn fuzz_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let chars = text.chars().count();

    match parse_filter(&text, &SESSION_SCHEMA, NOW) {
        Ok(expr) => {
            for (dialect, first) in [(Dialect::Sqlite, 2), (Dialect::Postgres, 1)] {
                let f = filter_to_sql(&expr, &SESSION_COLUMNS, dialect, first);
                // PostgreSQL refuses NUL in text: such a literal must be refused at parse time.
                for p in &f.params {
                    assert!(!matches!(p, SqlValue::Text(t) if t.contains('\0')), "a NUL reached SQL: {text:?}");
                }
                check_sql(&f.sql, f.params.len(), dialect, first);
            }
        }
        Err(e) => assert!(e.position <= chars, "error position {} past the end ({chars})", e.position),
    }
    match parse_orderby(&text, &SESSION_SCHEMA) {
        Ok(order) => assert!(order.len() <= text.split(',').count()),
        Err(e) => assert!(e.position <= chars, "orderby position {} past the end ({chars})", e.position),
    }
    if let Err(e) = parse_select(&text, &SESSION_SCHEMA) {
        assert!(e.position <= chars, "select position {} past the end ({chars})", e.position);
    }
    match parse_apply(&text, &SESSION_SCHEMA, NOW) {
        Ok(apply) => {
            for d in [Dialect::Sqlite, Dialect::Postgres] {
                let f = tessera_store_sql::aggregate::aggregate_sessions(
                    tessera_domain::ids::OrgId(uuid::Uuid::nil()),
                    &apply,
                    d,
                );
                assert!(
                    f.is_ok() || apply.filter.is_some(),
                    "only a filter( step can be refused by the store: {text:?}"
                );
            }
        }
        Err(e) => assert!(e.position <= chars, "apply position {} past the end ({chars})", e.position),
    }
}

/// Every value is bound: the SQL holds only columns, keywords, operators and placeholders,
/// and its placeholders are exactly `first..first+params`, in order.
fn check_sql(sql: &str, params: usize, dialect: Dialect, first: usize) {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " _.,()<>=?$+-".contains(c);
    assert!(sql.chars().all(allowed), "unexpected character in generated SQL: {sql}");
    assert!(!sql.contains("--"), "comment in generated SQL: {sql}");
    assert!(!sql.contains("IN ()"), "empty IN list in generated SQL: {sql}");
    let sigil = match dialect {
        Dialect::Sqlite => '?',
        Dialect::Postgres => '$',
    };
    let mut seen = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find(sigil) {
        rest = &rest[i + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        seen.push(digits.parse::<usize>().expect("a placeholder has a number"));
    }
    // A parameter may be used more than once (`endswith` names its value three times), but
    // the numbers run first, first+1, ... without a gap.
    let mut distinct = seen.clone();
    distinct.dedup();
    let expected: Vec<usize> = (first..first + params).collect();
    assert_eq!(distinct, expected, "placeholders of {sql}");
}
