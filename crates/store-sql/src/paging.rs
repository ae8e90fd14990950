//! Page tokens: what the SQL backends put in the opaque [`PageToken`]s they hand out, and
//! the keyset pages they serve with them.
//!
//! A list's token is a keyset position over the table's insertion sequence (`seq`), so paging
//! stays one index range scan however deep it goes; a record query's token is the last row's
//! sort value and sequence. Nobody above the store reads either: a token that does not decode,
//! or does not continue the order it is given with, is invalid input naming the parameter
//! that carried it, never a failure.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_domain::FieldError;
use tessera_domain::filter::FieldType;
use tessera_domain::page::{Page, PageRequest, PageToken};
use tessera_store::{SessionQuery, StoreError, StoreResult};

use crate::rows::Decode;
use crate::{Dialect, Query, Value, placeholders};

/// Where a list page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    After(i64),
    Before(i64),
}

fn cursor_token(c: Cursor) -> PageToken {
    let text = match c {
        Cursor::After(n) => format!("n:{n}"),
        Cursor::Before(n) => format!("p:{n}"),
    };
    PageToken::new(URL_SAFE_NO_PAD.encode(text))
}

fn read_cursor(t: &PageToken) -> StoreResult<Cursor> {
    let decoded = || {
        let raw = URL_SAFE_NO_PAD.decode(t.as_str()).ok()?;
        let (dir, n) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
        let n: i64 = n.parse().ok()?;
        match dir {
            "n" => Some(Cursor::After(n)),
            "p" => Some(Cursor::Before(n)),
            _ => None,
        }
    };
    decoded().ok_or_else(|| {
        StoreError::Invalid(FieldError::new(
            "cursor",
            "cursor is not one this server issued; use meta.links.next or prev",
        ))
    })
}

/// One keyset page of a list: `SELECT cols, seq FROM ... WHERE ...` in insertion order.
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    cols: &'static str,
    /// `FROM ... WHERE ...`, with `$1..$n` for `params`.
    from_where: String,
    seq: &'static str,
    params: Vec<Value>,
    /// A statement reading the list's total where one is kept (see [`Self::kept_total`]).
    total: Option<Query>,
    cursor: Option<Cursor>,
    limit: i64,
    width: usize,
    pub decode: Decode<T>,
}

/// The rows of a list page as fetched, before the page is assembled.
pub struct Fetched<T> {
    items: Vec<(T, i64)>,
    more: bool,
}

impl<T> ListPage<T> {
    /// A page of `cols` (read by `decode`, `width` columns) `from_where`, ordered by `seq`.
    pub fn new(
        cols: &'static str,
        from_where: impl Into<String>,
        seq: &'static str,
        params: Vec<Value>,
        req: &PageRequest,
        decode: Decode<T>,
    ) -> StoreResult<Self> {
        let cursor = req.cursor.as_ref().map(read_cursor).transpose()?;
        let limit = i64::from(req.per_page.max(1));
        Ok(Self {
            cols,
            from_where: from_where.into(),
            seq,
            params,
            total: None,
            cursor,
            limit,
            width: crate::width(cols),
            decode,
        })
    }

    /// Reads the list's total with `total` (one row, one integer: a total the schema keeps
    /// exact) instead of counting the rows on every page.
    pub fn kept_total(mut self, total: Query) -> Self {
        self.total = Some(total);
        self
    }

    /// The statement answering how many rows the list holds: the kept total, or a
    /// `SELECT count(*)` of them.
    pub fn count(&self, d: Dialect) -> Query {
        match &self.total {
            Some(q) => q.clone(),
            None => Query::built(
                placeholders(&format!("SELECT count(*) {}", self.from_where), d).into(),
                self.params.clone(),
            ),
        }
    }

    /// The page's rows (one more than the page, to learn whether more follow), each with its
    /// sequence as the last column.
    pub fn rows(&self, d: Dialect) -> Query {
        let (seq, n) = (self.seq, self.params.len() + 1);
        let (cond, order) = match self.cursor {
            None => (String::new(), "ASC"),
            Some(Cursor::After(_)) => (format!(" AND {seq} > ${n}"), "ASC"),
            Some(Cursor::Before(_)) => (format!(" AND {seq} < ${n}"), "DESC"),
        };
        let sql = format!(
            "SELECT {}, {seq} {}{cond} ORDER BY {seq} {order} LIMIT {}",
            self.cols,
            self.from_where,
            self.limit + 1
        );
        let mut params = self.params.clone();
        if let Some(Cursor::After(x) | Cursor::Before(x)) = self.cursor {
            params.push(Value::Int(x));
        }
        Query::built(placeholders(&sql, d).into(), params)
    }

    /// Decodes one row of [`Self::rows`]: the item and its sequence.
    pub fn row(&self, r: &dyn crate::SqlRow) -> StoreResult<(T, i64)> {
        Ok(((self.decode)(r, 0)?, r.int(self.width)?))
    }

    pub fn fetched(&self, mut items: Vec<(T, i64)>) -> Fetched<T> {
        let more = items.len() as i64 > self.limit;
        items.truncate(self.limit as usize);
        if matches!(self.cursor, Some(Cursor::Before(_))) {
            items.reverse();
        }
        Fetched { items, more }
    }

    /// Whether rows lie beyond the page on the side the cursor came from: an `EXISTS` the
    /// backend runs, or `None` when the answer is known already.
    pub fn probe(&self, f: &Fetched<T>, d: Dialect) -> Option<Query> {
        let (first, last) = (f.items.first()?.1, f.items.last()?.1);
        let (op, at) = match self.cursor? {
            Cursor::After(_) => ("<", first),
            Cursor::Before(_) => (">", last),
        };
        let sql =
            format!("SELECT EXISTS (SELECT 1 {} AND {} {op} ${})", self.from_where, self.seq, self.params.len() + 1);
        let mut params = self.params.clone();
        params.push(Value::Int(at));
        Some(Query::built(placeholders(&sql, d).into(), params))
    }

    /// The page, from what was fetched, the total and the probe's answer.
    pub fn page(&self, f: Fetched<T>, total: i64, beyond: bool) -> Page<T> {
        let total = total.max(0) as u64;
        let (Some(first), Some(last)) = (f.items.first().map(|i| i.1), f.items.last().map(|i| i.1)) else {
            return Page { items: vec![], total, next: None, prev: None };
        };
        let (has_prev, has_next) = match self.cursor {
            None => (false, f.more),
            Some(Cursor::After(_)) => (beyond, f.more),
            Some(Cursor::Before(_)) => (f.more, beyond),
        };
        Page {
            items: f.items.into_iter().map(|(t, _)| t).collect(),
            total,
            next: has_next.then(|| cursor_token(Cursor::After(last))),
            prev: has_prev.then(|| cursor_token(Cursor::Before(first))),
        }
    }
}

/// Where the next page of an ordered record query starts: the last row's sort value (none
/// for insertion order) and sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub value: Value,
    pub seq: i64,
}

pub fn keyset_token(k: &Keyset) -> PageToken {
    let v = match &k.value {
        Value::Text(t) => serde_json::json!({"t": t, "s": k.seq}),
        Value::Int(n) => serde_json::json!({"i": n, "s": k.seq}),
        Value::Bool(b) => serde_json::json!({"i": i64::from(*b), "s": k.seq}),
        _ => serde_json::json!({"i": 0, "s": k.seq}),
    };
    PageToken::new(URL_SAFE_NO_PAD.encode(v.to_string()))
}

fn skiptoken(why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(FieldError::new("$skiptoken", why.to_string()))
}

/// Reads `q`'s skip token, checking that it continues `q`'s order: a forged one must never
/// reach the database as a parameter of the wrong type.
pub fn read_keyset(q: &SessionQuery) -> StoreResult<Option<Keyset>> {
    let Some(token) = &q.after else { return Ok(None) };
    let decoded = || {
        let raw = URL_SAFE_NO_PAD.decode(token.as_str()).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
        let seq = v.get("s")?.as_i64()?;
        let value = match (v.get("t").and_then(|t| t.as_str()), v.get("i").and_then(|i| i.as_i64())) {
            (Some(t), _) => Value::Text(t.to_owned()),
            (None, Some(i)) => Value::Int(i),
            _ => return None,
        };
        Some(Keyset { value, seq })
    };
    let k = decoded().ok_or_else(|| skiptoken("$skiptoken is not one this server issued; use NextSkipToken"))?;
    let invalid = |why: &str| Err(skiptoken(format!("$skiptoken is not valid: {why}")));
    if !q.keyset_capable() {
        return invalid("a skip token continues an order by at most one non-nullable field");
    }
    if k.seq < 0 {
        return invalid("use the NextSkipToken of the previous page");
    }
    let fits = match (q.order.first().map(|o| o.field.ty), &k.value) {
        // Insertion order continues from the sequence alone.
        (None, _) => true,
        (Some(FieldType::Text), Value::Text(t)) => !t.contains('\0'),
        (Some(FieldType::Int | FieldType::Time), Value::Int(_)) => true,
        (Some(FieldType::Bool), Value::Int(_)) => true,
        _ => false,
    };
    if fits {
        Ok(Some(k))
    } else {
        invalid("it does not continue this $orderby; use the NextSkipToken of the previous page")
    }
}

#[cfg(test)]
mod tests {
    use tessera_domain::filter::parse_orderby;
    use tessera_store::SESSION_SCHEMA;

    use super::*;

    fn q(order: &str, after: Option<PageToken>) -> SessionQuery {
        SessionQuery {
            filter: None,
            order: if order.is_empty() { vec![] } else { parse_orderby(order, &SESSION_SCHEMA).unwrap() },
            top: 10,
            skip: 0,
            after,
            count: false,
            rows: true,
        }
    }

    #[test]
    fn skip_tokens_round_trip_and_refuse_what_does_not_fit() {
        let k = Keyset { value: Value::Int(5), seq: 7 };
        assert_eq!(read_keyset(&q("create_time", Some(keyset_token(&k)))).unwrap(), Some(k.clone()));
        let field = |r: StoreResult<Option<Keyset>>| match r {
            Err(StoreError::Invalid(e)) => e.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(read_keyset(&q("user_id_or_email", Some(keyset_token(&k))))), "$skiptoken");
        assert_eq!(field(read_keyset(&q("", Some(PageToken::new("garbage".into()))))), "$skiptoken");
    }

    #[test]
    fn list_cursors_keep_their_format() {
        assert_eq!(cursor_token(Cursor::After(3)).as_str(), "bjoz");
        assert_eq!(read_cursor(&cursor_token(Cursor::Before(9))).unwrap(), Cursor::Before(9));
        assert!(matches!(read_cursor(&PageToken::new("!".into())), Err(StoreError::Invalid(e)) if e.field == "cursor"));
    }
}
