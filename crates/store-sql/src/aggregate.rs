//! `$apply` over the sessions table: one `GROUP BY` statement for both dialects, its rows read
//! as text (every column is cast, so one decoder serves any shape) and typed again by the
//! fields they came from.

use tessera_domain::Timestamp;
use tessera_domain::filter::{AggFunc, Apply, FieldDef, FieldType, MAX_GROUPS};
use tessera_domain::ids::OrgId;
use tessera_store::{Cell, StoreError, StoreResult, check_apply};

use crate::filter::{Columns, SESSION_COLUMNS, filter_to_sql};
use crate::rows::malformed;
use crate::statements::Fetch;
use crate::{Dialect, Query, SqlRow, Value, placeholder};

/// The statement of `apply` over the sessions of `org`.
pub fn aggregate_sessions(org: OrgId, apply: &Apply, d: Dialect) -> StoreResult<Fetch<Vec<Option<String>>>> {
    check_apply(apply).map_err(StoreError::Invalid)?;
    Ok(Fetch { query: aggregate_query(apply, "sessions s", &SESSION_COLUMNS, d, org.to_string()), decode: text_row })
}

fn aggregate_query(apply: &Apply, table: &str, columns: &Columns, d: Dialect, org: String) -> Query {
    let mut params = vec![Value::Text(org)];
    let mut where_sql = format!("s.org_id = {}", placeholder(d, 1));
    if let Some(f) = &apply.filter {
        let frag = filter_to_sql(f, columns, d, 2);
        where_sql.push_str(" AND ");
        where_sql.push_str(&frag.sql);
        params.extend(frag.params);
    }
    let groups: Vec<&str> = apply.group_by.iter().map(|(f, _)| columns.of(f)).collect();
    let width = groups.len() + apply.aggregates.len();
    let mut select = vec![format!("CAST({width} AS BIGINT)")];
    select.extend(groups.iter().map(|c| format!("CAST({c} AS TEXT)")));
    select.extend(apply.aggregates.iter().map(|a| {
        let value = match (a.func, a.field) {
            (AggFunc::Count, _) | (_, None) => "count(*)".to_owned(),
            (AggFunc::CountDistinct, Some(f)) => format!("count(DISTINCT {})", columns.of(f)),
            (AggFunc::Min, Some(f)) => format!("min({})", columns.of(f)),
            (AggFunc::Max, Some(f)) => format!("max({})", columns.of(f)),
            (AggFunc::Sum, Some(f)) => format!("sum({})", columns.of(f)),
            (AggFunc::Average, Some(f)) => format!("avg({})", columns.of(f)),
        };
        format!("CAST({value} AS TEXT)")
    }));
    let mut sql = format!("SELECT {} FROM {table} WHERE {where_sql}", select.join(", "));
    if !groups.is_empty() {
        // NULLs last on both backends, as the session query sorts them.
        let order: Vec<String> = groups.iter().map(|c| format!("{c} IS NULL, {c}")).collect();
        sql.push_str(&format!(" GROUP BY {} ORDER BY {}", groups.join(", "), order.join(", ")));
    }
    sql.push_str(&format!(" LIMIT {}", MAX_GROUPS + 1));
    Query::built(sql, params)
}

static LIVE_BY_KIND: crate::Stmt = crate::Stmt::new(
    "SELECT kind, count(*) FROM sessions WHERE status = 'Active' AND expiration > $1 \
     AND (idle_time_expiration IS NULL OR idle_time_expiration > $1) GROUP BY kind ORDER BY kind",
);

/// Sessions live at `now` by kind, in every organization (the metrics' gauge): what
/// authentication would accept, whether or not the sweeper has marked the rest.
pub fn live_sessions_by_kind(now: Timestamp) -> Fetch<(String, i64)> {
    Fetch { query: Query::new(&LIVE_BY_KIND, vec![Value::Int(now.0)]), decode: |r, _| Ok((r.text(0)?, r.int(1)?)) }
}

/// Column 0 says how many text columns follow.
fn text_row(r: &dyn SqlRow, _: usize) -> StoreResult<Vec<Option<String>>> {
    let n = r.int(0)?;
    (1..=n.clamp(0, 64) as usize).map(|i| r.opt_text(i)).collect()
}

/// Types the text rows of [`aggregate_sessions`] by the fields of `apply`.
pub fn cells(apply: &Apply, rows: Vec<Vec<Option<String>>>) -> StoreResult<Vec<Vec<Cell>>> {
    let kinds: Vec<Kind> = apply
        .group_by
        .iter()
        .map(|(f, _)| Kind::Field(f))
        .chain(apply.aggregates.iter().map(|a| match (a.func, a.field) {
            (AggFunc::Count | AggFunc::CountDistinct, _) | (_, None) => Kind::Count,
            (AggFunc::Average, Some(_)) => Kind::Float,
            (AggFunc::Sum, Some(_)) => Kind::Count,
            (AggFunc::Min | AggFunc::Max, Some(f)) => Kind::Field(f),
        }))
        .collect();
    rows.into_iter()
        .map(|row| {
            if row.len() != kinds.len() {
                return Err(malformed(format!("aggregate row has {} values, expected {}", row.len(), kinds.len())));
            }
            row.into_iter().zip(&kinds).map(|(v, k)| cell(v, *k)).collect()
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Field(&'static FieldDef),
    Count,
    Float,
}

fn cell(v: Option<String>, k: Kind) -> StoreResult<Cell> {
    let Some(v) = v else { return Ok(Cell::Null) };
    let int = |v: &str| v.trim().parse::<i64>().map_err(|_| malformed(format!("not an integer: {v}")));
    Ok(match k {
        Kind::Count => Cell::Int(int(&v)?),
        Kind::Float => Cell::Float(v.trim().parse().map_err(|_| malformed(format!("not a number: {v}")))?),
        Kind::Field(f) => match f.ty {
            FieldType::Text => Cell::Text(v),
            FieldType::Int => Cell::Int(int(&v)?),
            FieldType::Time => Cell::Time(Timestamp(int(&v)?)),
            FieldType::Bool => Cell::Bool(matches!(v.as_str(), "1" | "true" | "t")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::filter::parse_apply;
    use tessera_store::SESSION_SCHEMA;

    #[test]
    fn a_grouping_is_one_statement_with_every_value_bound() {
        let a = parse_apply(
            "filter(user_id_or_email eq 'x''; DROP TABLE sessions')/groupby((Kind,status),aggregate($count as n, failed_logins with average as avg))",
            &SESSION_SCHEMA,
            Timestamp(0),
        )
        .unwrap();
        let q = aggregate_query(&a, "sessions s", &SESSION_COLUMNS, Dialect::Postgres, "org".into());
        assert_eq!(
            q.sql(Dialect::Postgres),
            "SELECT CAST(4 AS BIGINT), CAST(s.kind AS TEXT), CAST(s.status AS TEXT), CAST(count(*) AS TEXT), \
             CAST(avg(s.failed_logins) AS TEXT) FROM sessions s WHERE s.org_id = $1 AND s.user_email = $2 \
             GROUP BY s.kind, s.status ORDER BY s.kind IS NULL, s.kind, s.status IS NULL, s.status LIMIT 1001"
        );
        assert_eq!(q.params.len(), 2);
    }

    #[test]
    fn rows_are_typed_by_their_fields() {
        let a = parse_apply(
            "groupby((create_time),aggregate($count as n, failed_logins with average as avg, end_time with max as last))",
            &SESSION_SCHEMA,
            Timestamp(0),
        )
        .unwrap();
        let rows = vec![vec![Some("1700000000".into()), Some("3".into()), Some("2.5000".into()), None]];
        assert_eq!(
            cells(&a, rows).unwrap(),
            vec![vec![Cell::Time(Timestamp(1_700_000_000)), Cell::Int(3), Cell::Float(2.5), Cell::Null]]
        );
        assert!(cells(&a, vec![vec![None]]).is_err());
    }
}
