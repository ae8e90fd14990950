//! `$apply`: the OData aggregation Intersight answers, over the same fields as `$filter`.
//!
//! ```text
//! apply     := step ("/" step)*
//! step      := "filter(" filter ")"                       -- only before the others
//!            | "groupby((" field ("," field)* ")" ["," "aggregate(" aggs ")"] ")"
//!            | "aggregate(" aggs ")"
//! aggs      := agg ("," agg)*
//! agg       := "$count as" alias
//!            | field "with" ("count" | "countdistinct" | "min" | "max" | "sum" | "average") "as" alias
//! ```
//!
//! `groupby((kind,status),aggregate($count as count))` gives one row per kind and status with
//! its number of sessions; `aggregate($count as total)` gives one row. Field names may be
//! spelled as in `$filter` (`status`) or as Intersight spells them (`Status`); each result
//! row names its values as the request wrote them. Errors carry the 0-based character
//! position of what is wrong, as the filter's do.

use super::{Expr, FieldDef, FieldType, FilterError, MAX_FILTER_LEN, Schema, parse_filter};
use crate::time::Timestamp;

/// Most rows an aggregation may answer; a grouping with more is refused, not cut short.
pub const MAX_GROUPS: usize = 1_000;
/// Most fields in one `groupby` and most values in one `aggregate`.
const MAX_TERMS: usize = 8;
/// Longest alias.
const MAX_ALIAS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `$count`: rows in the group.
    Count,
    /// `field with countdistinct`: distinct non-null values.
    CountDistinct,
    Min,
    Max,
    /// Numbers only.
    Sum,
    /// Numbers only.
    Average,
}

/// One aggregate value of each result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub func: AggFunc,
    /// `None` for `$count`.
    pub field: Option<&'static FieldDef>,
    /// The name of the value in each result row.
    pub alias: String,
}

/// One value of an aggregation's result row, typed by the field it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    /// An average.
    Float(f64),
    Bool(bool),
    Time(Timestamp),
}

/// A parsed `$apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// The `filter(...)` steps, joined with `and`.
    pub filter: Option<Expr>,
    /// The grouping fields, each with the name the request gave it.
    pub group_by: Vec<(&'static FieldDef, String)>,
    pub aggregates: Vec<Aggregate>,
}

impl Apply {
    /// The names of each result row's values, in order: the groups, then the aggregates.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.group_by.iter().map(|(_, n)| n.as_str()).chain(self.aggregates.iter().map(|a| a.alias.as_str()))
    }
}

/// Parses `$apply` text against `schema`; `now()` in a `filter(...)` step becomes `now`.
pub fn parse_apply(input: &str, schema: &Schema, now: Timestamp) -> Result<Apply, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_FILTER_LEN {
        return Err(FilterError::new(MAX_FILTER_LEN, format!("$apply may be at most {MAX_FILTER_LEN} characters")));
    }
    let mut p = Cursor { chars, at: 0, schema, now };
    let mut out = Apply { filter: None, group_by: vec![], aggregates: vec![] };
    let mut shaped = false;
    loop {
        p.ws();
        let (pos, step) = p.word().ok_or_else(|| p.error("expected filter(, groupby( or aggregate("))?;
        match step.as_str() {
            "filter" if shaped => {
                return Err(FilterError::new(pos, "filter( must come before groupby( and aggregate("));
            }
            "filter" => {
                let expr = p.filter_step()?;
                out.filter = Some(match out.filter.take() {
                    None => expr,
                    Some(prev) => Expr::And(Box::new(prev), Box::new(expr)),
                });
            }
            "groupby" | "aggregate" if shaped => {
                return Err(FilterError::new(pos, "only one groupby( or aggregate( step is supported"));
            }
            "groupby" => {
                p.expect('(', "after groupby")?;
                p.expect('(', "to open the list of grouping fields")?;
                out.group_by = p.group_fields()?;
                p.ws();
                if p.eat(',') {
                    p.ws();
                    let (at, w) = p.word().ok_or_else(|| p.error("expected aggregate( after ','"))?;
                    if w != "aggregate" {
                        return Err(FilterError::new(at, format!("expected aggregate( after ',', found '{w}'")));
                    }
                    p.expect('(', "after aggregate")?;
                    out.aggregates = p.aggregates()?;
                }
                p.expect(')', "to close groupby(")?;
                shaped = true;
            }
            "aggregate" => {
                p.expect('(', "after aggregate")?;
                out.aggregates = p.aggregates()?;
                shaped = true;
            }
            other => {
                return Err(FilterError::new(
                    pos,
                    format!("unknown transformation '{other}'; supported: filter, groupby, aggregate"),
                ));
            }
        }
        p.ws();
        if p.at == p.chars.len() {
            break;
        }
        if !p.eat('/') {
            return Err(p.error("expected '/' or the end of $apply"));
        }
    }
    if !shaped {
        return Err(FilterError::new(p.chars.len(), "expected a groupby( or aggregate( step"));
    }
    Ok(out)
}

struct Cursor<'a> {
    chars: Vec<char>,
    at: usize,
    schema: &'a Schema,
    now: Timestamp,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.chars.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn found(&self) -> String {
        match self.chars.get(self.at) {
            Some(c) => format!("found '{c}'"),
            None => "found end of input".into(),
        }
    }

    fn error(&self, what: &str) -> FilterError {
        FilterError::new(self.at, format!("{what}, {}", self.found()))
    }

    fn expect(&mut self, c: char, why: &str) -> Result<(), FilterError> {
        self.ws();
        if self.eat(c) { Ok(()) } else { Err(self.error(&format!("expected '{c}' {why}"))) }
    }

    /// A name: letters, digits and `_`, or `$count`.
    fn word(&mut self) -> Option<(usize, String)> {
        let start = self.at;
        if self.chars.get(self.at) == Some(&'$') {
            self.at += 1;
        }
        while self.chars.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
            self.at += 1;
        }
        if self.at == start || (self.at == start + 1 && self.chars[start] == '$') {
            self.at = start;
            return None;
        }
        Some((start, self.chars[start..self.at].iter().collect()))
    }

    fn field(&mut self) -> Result<(&'static FieldDef, String), FilterError> {
        self.ws();
        let (pos, name) = self.word().ok_or_else(|| self.error("expected a field name"))?;
        let field = self.schema.field(&name).ok_or_else(|| {
            FilterError::new(pos, format!("unknown field '{name}'; known fields: {}", self.schema.names()))
        })?;
        Ok((field, name))
    }

    /// `filter(` was read up to the name: the expression up to its matching `)`.
    fn filter_step(&mut self) -> Result<Expr, FilterError> {
        self.expect('(', "after filter")?;
        let start = self.at;
        let mut depth = 0usize;
        let mut quoted = false;
        while let Some(&c) = self.chars.get(self.at) {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted && depth == 0 => break,
                ')' if !quoted => depth -= 1,
                _ => {}
            }
            self.at += 1;
        }
        if self.at == self.chars.len() {
            return Err(FilterError::new(start, "filter( is not closed: expected ')'"));
        }
        let text: String = self.chars[start..self.at].iter().collect();
        self.at += 1;
        parse_filter(&text, self.schema, self.now)
            .map_err(|e| FilterError::new(start + e.position, format!("in filter(: {}", e.message)))
    }

    fn group_fields(&mut self) -> Result<Vec<(&'static FieldDef, String)>, FilterError> {
        let mut out: Vec<(&'static FieldDef, String)> = vec![];
        loop {
            let pos = {
                self.ws();
                self.at
            };
            let (field, name) = self.field()?;
            if out.iter().any(|(f, _)| *f == field) {
                return Err(FilterError::new(pos, format!("'{name}' is already a grouping field")));
            }
            if out.len() == MAX_TERMS {
                return Err(FilterError::new(pos, format!("groupby takes at most {MAX_TERMS} fields")));
            }
            out.push((field, name));
            self.ws();
            if self.eat(')') {
                return Ok(out);
            }
            if !self.eat(',') {
                return Err(self.error("expected ',' or ')' in the list of grouping fields"));
            }
        }
    }

    /// After `aggregate(`: the values up to the closing `)`.
    fn aggregates(&mut self) -> Result<Vec<Aggregate>, FilterError> {
        let mut out: Vec<Aggregate> = vec![];
        loop {
            self.ws();
            let pos = self.at;
            if out.len() == MAX_TERMS {
                return Err(FilterError::new(pos, format!("aggregate takes at most {MAX_TERMS} values")));
            }
            let (func, field) = if self.chars.get(self.at) == Some(&'$') {
                let (at, w) = self.word().ok_or_else(|| self.error("expected $count"))?;
                if w != "$count" {
                    return Err(FilterError::new(at, format!("unknown aggregate '{w}'; use $count")));
                }
                (AggFunc::Count, None)
            } else {
                let (field, name) = self.field()?;
                self.keyword("with")?;
                self.ws();
                let (at, w) = self.word().ok_or_else(|| self.error("expected an aggregation method"))?;
                let func = match w.as_str() {
                    "count" | "countdistinct" => AggFunc::CountDistinct,
                    "min" => AggFunc::Min,
                    "max" => AggFunc::Max,
                    "sum" => AggFunc::Sum,
                    "average" => AggFunc::Average,
                    _ => {
                        return Err(FilterError::new(
                            at,
                            format!("unknown aggregation method '{w}'; use countdistinct, min, max, sum or average"),
                        ));
                    }
                };
                if matches!(func, AggFunc::Sum | AggFunc::Average) && field.ty != FieldType::Int {
                    return Err(FilterError::new(
                        at,
                        format!("{w} needs a number, and '{name}' is {}", field.ty.describe()),
                    ));
                }
                (func, Some(field))
            };
            self.keyword("as")?;
            self.ws();
            let (at, alias) = self.word().ok_or_else(|| self.error("expected a name after 'as'"))?;
            if alias.starts_with('$') || alias.starts_with(|c: char| c.is_ascii_digit()) || alias.len() > MAX_ALIAS {
                return Err(FilterError::new(
                    at,
                    format!(
                        "'{alias}' is not a name: use letters, digits and '_', at most {MAX_ALIAS}, not starting with a digit"
                    ),
                ));
            }
            if out.iter().any(|a| a.alias == alias) {
                return Err(FilterError::new(at, format!("'{alias}' names two values")));
            }
            out.push(Aggregate { func, field, alias });
            self.ws();
            if self.eat(')') {
                return Ok(out);
            }
            if !self.eat(',') {
                return Err(self.error("expected ',' or ')' in aggregate("));
            }
        }
    }

    fn keyword(&mut self, kw: &str) -> Result<(), FilterError> {
        self.ws();
        let at = self.at;
        match self.word() {
            Some((_, w)) if w == kw => Ok(()),
            _ => {
                self.at = at;
                Err(self.error(&format!("expected '{kw}'")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FieldType;

    static FIELDS: &[FieldDef] = &[
        FieldDef { name: "kind", ty: FieldType::Text, nullable: false },
        FieldDef { name: "status", ty: FieldType::Text, nullable: false },
        FieldDef { name: "failed_logins", ty: FieldType::Int, nullable: false },
        FieldDef { name: "create_time", ty: FieldType::Time, nullable: false },
    ];
    static SCHEMA: Schema = Schema { fields: FIELDS };

    fn ok(s: &str) -> Apply {
        parse_apply(s, &SCHEMA, Timestamp(1_000)).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }
    fn err(s: &str) -> String {
        parse_apply(s, &SCHEMA, Timestamp(1_000)).expect_err(s).to_string()
    }

    #[test]
    fn groupby_with_count_names_values_as_written() {
        let a = ok("groupby((Kind, status),aggregate($count as Total))");
        assert_eq!(
            a.group_by.iter().map(|(f, n)| (f.name, n.as_str())).collect::<Vec<_>>(),
            [("kind", "Kind"), ("status", "status")]
        );
        assert_eq!(a.aggregates, [Aggregate { func: AggFunc::Count, field: None, alias: "Total".into() }]);
        assert_eq!(a.names().collect::<Vec<_>>(), ["Kind", "status", "Total"]);
        assert!(a.filter.is_none());
    }

    #[test]
    fn filters_before_the_grouping_are_joined() {
        let a = ok(
            "filter(status eq 'Active')/filter(contains(kind, ')/'))/aggregate($count as n, failed_logins with max as worst, CreateTime with min as first)",
        );
        assert!(matches!(a.filter, Some(Expr::And(..))));
        assert_eq!(
            a.aggregates.iter().map(|a| a.func).collect::<Vec<_>>(),
            [AggFunc::Count, AggFunc::Max, AggFunc::Min]
        );
        assert!(a.group_by.is_empty());
        let g = ok("groupby((kind))");
        assert!(g.aggregates.is_empty());
    }

    #[test]
    fn errors_point_at_what_is_wrong() {
        assert_eq!(
            err("groupby((kind, nope))"),
            "at 15: unknown field 'nope'; known fields: kind, status, failed_logins, create_time"
        );
        let inner = parse_filter("status eq 1", &SCHEMA, Timestamp(0)).unwrap_err();
        assert_eq!(
            err("filter(status eq 1)/aggregate($count as n)"),
            format!("at {}: in filter(: {}", 7 + inner.position, inner.message)
        );
        assert_eq!(
            err("aggregate($count as n)/filter(kind eq 'a')"),
            "at 23: filter( must come before groupby( and aggregate("
        );
        assert_eq!(err("aggregate(kind with sum as s)"), "at 20: sum needs a number, and 'kind' is a string");
        assert_eq!(err("aggregate($count as n, $count as n)"), "at 33: 'n' names two values");
        assert_eq!(
            err("groupby((kind),aggregate($count as n)"),
            "at 37: expected ')' to close groupby(, found end of input"
        );
        assert_eq!(err("filter(kind eq 'a')"), "at 19: expected a groupby( or aggregate( step");
        assert_eq!(
            err("topcount(3, kind)"),
            "at 0: unknown transformation 'topcount'; supported: filter, groupby, aggregate"
        );
        assert_eq!(err("aggregate($sum as n)"), "at 10: unknown aggregate '$sum'; use $count");
        assert_eq!(err("groupby((kind,kind))"), "at 14: 'kind' is already a grouping field");
        assert_eq!(err(""), "at 0: expected filter(, groupby( or aggregate(, found end of input");
        assert!(err(&"a".repeat(MAX_FILTER_LEN + 1)).contains("at most"));
    }

    #[test]
    fn pascal_case_names_are_intersights_and_nothing_else() {
        assert!(super::super::is_pascal_of("ClientIpAddress", "client_ip_address"));
        assert!(super::super::is_pascal_of("Moid", "moid"));
        assert!(!super::super::is_pascal_of("clientIpAddress", "client_ip_address"));
        assert!(!super::super::is_pascal_of("CLIENTIPADDRESS", "client_ip_address"));
        assert!(!super::super::is_pascal_of("Client_Ip_Address", "client_ip_address"));
        assert!(!super::super::is_pascal_of("ClientIp", "client_ip_address"));
        assert_eq!(SCHEMA.field("FailedLogins").map(|f| f.name), Some("failed_logins"));
        assert_eq!(SCHEMA.field("failedLogins"), None);
    }
}
