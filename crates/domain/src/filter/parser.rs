//! Recursive-descent parser from tokens to a typed, schema-checked [`Expr`].

use super::lexer::{Tok, Token, lex};
use super::*;

struct Parser<'a> {
    toks: Vec<Token>,
    at: usize,
    /// Position reported for "end of input".
    end: usize,
    schema: &'a Schema,
    now: Timestamp,
    depth: usize,
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "and"
            | "or"
            | "not"
            | "eq"
            | "ne"
            | "gt"
            | "ge"
            | "lt"
            | "le"
            | "in"
            | "true"
            | "false"
            | "null"
            | "now"
            | "add"
            | "sub"
    )
}

/// Parses `$filter` text against `schema`; `now()` becomes `now`.
pub fn parse_filter(input: &str, schema: &Schema, now: Timestamp) -> Result<Expr, FilterError> {
    let len = input.chars().count();
    if len > MAX_FILTER_LEN {
        return Err(FilterError::new(MAX_FILTER_LEN, format!("a filter may be at most {MAX_FILTER_LEN} characters")));
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return Err(FilterError::new(0, "expected an expression, found an empty filter"));
    }
    let mut p = Parser { toks, at: 0, end: len, schema, now, depth: 0 };
    let expr = p.expr()?;
    if let Some(t) = p.peek() {
        let (pos, what) = (t.pos, t.tok.describe());
        return Err(FilterError::new(pos, format!("expected 'and', 'or' or the end of the filter, found {what}")));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(x), .. }) if x == w)
    }
    fn found(&self) -> (usize, String) {
        match self.peek() {
            Some(t) => (t.pos, format!("found {}", t.tok.describe())),
            None => (self.end, "found end of input".into()),
        }
    }
    fn expect(&mut self, tok: Tok, what: &str, after: &str) -> Result<usize, FilterError> {
        match self.peek() {
            Some(t) if t.tok == tok => {
                let pos = t.pos;
                self.at += 1;
                Ok(pos)
            }
            _ => {
                let (pos, found) = self.found();
                Err(FilterError::new(pos, format!("expected {what} {after}, {found}")))
            }
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(pos, format!("the filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            let right = self.and_after("or")?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_after(&mut self, op: &str) -> Result<Expr, FilterError> {
        if self.peek().is_none() {
            return Err(FilterError::new(self.end, format!("expected an expression after '{op}', found end of input")));
        }
        self.and()
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            if self.peek().is_none() {
                return Err(FilterError::new(self.end, "expected an expression after 'and', found end of input"));
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.peek_word("not") {
            let pos = self.next().map(|t| t.pos).unwrap_or(self.end);
            self.enter(pos)?;
            if self.peek().is_none() {
                return Err(FilterError::new(self.end, "expected an expression after 'not', found end of input"));
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let Some(tok) = self.next() else {
            return Err(FilterError::new(self.end, "expected an expression, found end of input"));
        };
        match tok.tok {
            Tok::LParen => {
                self.enter(tok.pos)?;
                let inner = self.expr()?;
                self.expect(Tok::RParen, "')'", &format!("to close the '(' at {}", tok.pos))?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Word(ref w) if matches!(w.as_str(), "contains" | "startswith" | "endswith") => {
                let func = match w.as_str() {
                    "contains" => StrFunc::Contains,
                    "startswith" => StrFunc::StartsWith,
                    _ => StrFunc::EndsWith,
                };
                self.expect(Tok::LParen, "'('", &format!("after '{w}'"))?;
                let field = self.field()?;
                if field.ty != FieldType::Text {
                    return Err(FilterError::new(
                        tok.pos,
                        format!("{w} works on strings; field '{}' is {}", field.name, field.ty.describe()),
                    ));
                }
                self.expect(Tok::Comma, "','", &format!("after the field in {w}("))?;
                let value = match self.next() {
                    Some(Token { tok: Tok::Str(s), .. }) => s,
                    Some(t) => {
                        return Err(FilterError::new(
                            t.pos,
                            format!("expected a quoted string in {w}(), found {}", t.tok.describe()),
                        ));
                    }
                    None => {
                        return Err(FilterError::new(
                            self.end,
                            format!("expected a quoted string in {w}(), found end of input"),
                        ));
                    }
                };
                self.expect(Tok::RParen, "')'", &format!("to close {w}("))?;
                Ok(Expr::Func { func, field, value })
            }
            Tok::Word(_) => {
                self.at -= 1;
                let field = self.field()?;
                self.comparison(field)
            }
            other => Err(FilterError::new(
                tok.pos,
                format!("expected a field name, '(' or 'not', found {}", other.describe()),
            )),
        }
    }

    fn field(&mut self) -> Result<&'static FieldDef, FilterError> {
        match self.next() {
            Some(Token { tok: Tok::Word(w), pos }) => {
                if is_keyword(&w) {
                    return Err(FilterError::new(pos, format!("expected a field name, found the keyword '{w}'")));
                }
                self.schema.field(&w).ok_or_else(|| {
                    FilterError::new(pos, format!("unknown field '{w}'; known fields: {}", self.schema.names()))
                })
            }
            Some(t) => Err(FilterError::new(t.pos, format!("expected a field name, found {}", t.tok.describe()))),
            None => Err(FilterError::new(self.end, "expected a field name, found end of input")),
        }
    }

    fn comparison(&mut self, field: &'static FieldDef) -> Result<Expr, FilterError> {
        let (op_pos, op) = match self.next() {
            Some(Token { tok: Tok::Word(w), pos }) => (pos, w),
            Some(t) => {
                return Err(FilterError::new(
                    t.pos,
                    format!(
                        "expected an operator (eq, ne, gt, ge, lt, le, in) after '{}', found {}",
                        field.name,
                        t.tok.describe()
                    ),
                ));
            }
            None => {
                return Err(FilterError::new(
                    self.end,
                    format!(
                        "expected an operator (eq, ne, gt, ge, lt, le, in) after '{}', found end of input",
                        field.name
                    ),
                ));
            }
        };
        let op = match op.as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            "in" => return self.in_list(field),
            other => {
                return Err(FilterError::new(
                    op_pos,
                    format!(
                        "expected an operator (eq, ne, gt, ge, lt, le, in) after '{}', found '{other}'",
                        field.name
                    ),
                ));
            }
        };
        let after = format!("after '{}'", op_name(op));
        let (pos, value) = self.value(&after)?;
        let value = check_type(field, value, pos)?;
        if value == Value::Null && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(FilterError::new(pos, "null can only be compared with eq or ne"));
        }
        if field.ty == FieldType::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(FilterError::new(op_pos, format!("field '{}' is a boolean: use eq or ne", field.name)));
        }
        Ok(Expr::Compare { field, op, value })
    }

    fn in_list(&mut self, field: &'static FieldDef) -> Result<Expr, FilterError> {
        self.expect(Tok::LParen, "'('", "after 'in'")?;
        let mut values = Vec::new();
        if let Some(Token { tok: Tok::RParen, pos }) = self.peek() {
            return Err(FilterError::new(*pos, "expected at least one value in 'in (...)'"));
        }
        loop {
            let (pos, v) = self.value("in the 'in' list")?;
            let v = check_type(field, v, pos)?;
            if v == Value::Null {
                return Err(FilterError::new(pos, "null is not allowed in an 'in' list; use 'eq null'"));
            }
            values.push(v);
            if values.len() > MAX_IN_VALUES {
                return Err(FilterError::new(pos, format!("an 'in' list holds at most {MAX_IN_VALUES} values")));
            }
            match self.next() {
                Some(Token { tok: Tok::Comma, .. }) => continue,
                Some(Token { tok: Tok::RParen, .. }) => break,
                Some(t) => {
                    return Err(FilterError::new(
                        t.pos,
                        format!("expected ',' or ')' in the 'in' list, found {}", t.tok.describe()),
                    ));
                }
                None => {
                    return Err(FilterError::new(self.end, "expected ',' or ')' in the 'in' list, found end of input"));
                }
            }
        }
        Ok(Expr::In { field, values })
    }

    /// A literal, or `now()` with additions and subtractions of durations.
    fn value(&mut self, after: &str) -> Result<(usize, Value), FilterError> {
        let Some(t) = self.next() else {
            return Err(FilterError::new(self.end, format!("expected a value {after}, found end of input")));
        };
        let v = match t.tok {
            Tok::Str(s) => Value::Text(s),
            Tok::Int(n) => Value::Int(n),
            Tok::Time(ts) => Value::Time(ts),
            Tok::Word(ref w) if w == "true" => Value::Bool(true),
            Tok::Word(ref w) if w == "false" => Value::Bool(false),
            Tok::Word(ref w) if w == "null" => Value::Null,
            Tok::Word(ref w) if w == "now" => {
                self.expect(Tok::LParen, "'('", "after 'now'")?;
                self.expect(Tok::RParen, "')'", "after 'now('")?;
                let mut at = self.now;
                while self.peek_word("add") || self.peek_word("sub") {
                    let sign = match self.next() {
                        Some(Token { tok: Tok::Word(w), .. }) if w == "sub" => -1,
                        _ => 1,
                    };
                    let secs = match self.next() {
                        Some(Token { tok: Tok::Word(d), pos }) => {
                            parse_duration(&d).map_err(|m| FilterError::new(pos, m))?
                        }
                        Some(other) => {
                            return Err(FilterError::new(
                                other.pos,
                                format!("expected an ISO 8601 duration such as PT2H, found {}", other.tok.describe()),
                            ));
                        }
                        None => {
                            return Err(FilterError::new(
                                self.end,
                                "expected an ISO 8601 duration such as PT2H, found end of input",
                            ));
                        }
                    };
                    at = at.plus_secs(sign * secs);
                }
                Value::Time(at)
            }
            other => {
                return Err(FilterError::new(t.pos, format!("expected a value {after}, found {}", other.describe())));
            }
        };
        Ok((t.pos, v))
    }
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
    }
}

fn value_kind(v: &Value) -> String {
    match v {
        Value::Text(s) => format!("'{s}' is a string"),
        Value::Int(n) => format!("{n} is a number"),
        Value::Bool(b) => format!("{b} is a boolean"),
        Value::Time(t) => format!("{t} is a time"),
        Value::Null => "null".into(),
    }
}

/// Checks (and where lossless, converts) a literal for a field: a quoted RFC 3339 string is
/// accepted for a time field.
fn check_type(field: &'static FieldDef, v: Value, pos: usize) -> Result<Value, FilterError> {
    let ok = match (&field.ty, &v) {
        (_, Value::Null) => return Ok(v),
        (FieldType::Text, Value::Text(_))
        | (FieldType::Int, Value::Int(_))
        | (FieldType::Bool, Value::Bool(_))
        | (FieldType::Time, Value::Time(_)) => true,
        (FieldType::Time, Value::Text(s)) => {
            return Timestamp::parse_rfc3339(s).map(Value::Time).ok_or_else(|| {
                FilterError::new(pos, format!("field '{}' is a time; '{s}' is not an RFC 3339 time", field.name))
            });
        }
        _ => false,
    };
    if ok {
        Ok(v)
    } else {
        Err(FilterError::new(pos, format!("field '{}' is {}; {}", field.name, field.ty.describe(), value_kind(&v))))
    }
}

/// `P[nW][nD][T[nH][nM][nS]]` in whole units. Years and months have no fixed length, so
/// they are refused rather than guessed.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not an ISO 8601 duration such as PT2H or P1DT30M");
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' if !in_time && num.is_empty() => in_time = true,
            '0'..='9' => num.push(c),
            '.' | ',' => return Err(format!("'{s}': fractions are not supported; use whole units")),
            unit => {
                if num.is_empty() {
                    return Err(bad());
                }
                let n: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                let secs = match (in_time, unit) {
                    (false, 'W') => 604_800,
                    (false, 'D') => 86_400,
                    (false, 'Y') | (false, 'M') => {
                        return Err(format!("'{s}': years and months have no fixed length; use days (D) or weeks (W)"));
                    }
                    (true, 'H') => 3_600,
                    (true, 'M') => 60,
                    (true, 'S') => 1,
                    _ => return Err(bad()),
                };
                total = n
                    .checked_mul(secs)
                    .and_then(|x| total.checked_add(x))
                    .ok_or_else(|| format!("'{s}' is too long"))?;
                any = true;
            }
        }
    }
    if !num.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
}

fn list(input: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    for part in input.split(',') {
        let lead = part.chars().take_while(|c| c.is_whitespace()).count();
        out.push((start + lead, part.trim().to_owned()));
        start += part.chars().count() + 1;
    }
    out
}

/// Parses `$orderby`: `field [asc|desc]`, comma-separated.
pub fn parse_orderby(input: &str, schema: &Schema) -> Result<Vec<OrderBy>, FilterError> {
    let mut out = Vec::new();
    for (pos, item) in list(input) {
        let mut words = item.split_whitespace();
        let Some(name) = words.next() else {
            return Err(FilterError::new(pos, "expected a field name in $orderby"));
        };
        let field = schema.field(name).ok_or_else(|| {
            FilterError::new(pos, format!("unknown field '{name}'; known fields: {}", schema.names()))
        })?;
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                // Positions count characters, not bytes (the text may hold multi-byte ones).
                let at = pos + item.find(other).map_or(0, |b| item[..b].chars().count());
                return Err(FilterError::new(at, format!("expected 'asc' or 'desc' after '{name}', found '{other}'")));
            }
        };
        if let Some(extra) = words.next() {
            let at = pos + item.rfind(extra).map_or(0, |b| item[..b].chars().count());
            return Err(FilterError::new(at, format!("expected ',' or the end of $orderby, found '{extra}'")));
        }
        out.push(OrderBy { field, descending });
    }
    Ok(out)
}

/// Parses `$select`: field names, comma-separated.
pub fn parse_select(input: &str, schema: &Schema) -> Result<Vec<&'static FieldDef>, FilterError> {
    list(input)
        .into_iter()
        .map(|(pos, name)| {
            if name.is_empty() {
                return Err(FilterError::new(pos, "expected a field name in $select"));
            }
            schema.field(&name).ok_or_else(|| {
                FilterError::new(pos, format!("unknown field '{name}'; known fields: {}", schema.names()))
            })
        })
        .collect()
}
