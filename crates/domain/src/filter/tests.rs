//! The filter corpus: valid filters and their trees, invalid ones and their exact positions.

use super::*;

static FIELDS: &[FieldDef] = &[
    FieldDef { name: "status", ty: FieldType::Text, nullable: false },
    FieldDef { name: "failed_logins", ty: FieldType::Int, nullable: false },
    FieldDef { name: "create_time", ty: FieldType::Time, nullable: false },
    FieldDef { name: "end_time", ty: FieldType::Time, nullable: true },
    FieldDef { name: "is_admin", ty: FieldType::Bool, nullable: false },
];
static SCHEMA: Schema = Schema { fields: FIELDS };
const NOW: Timestamp = Timestamp(1_000_000);

fn ok(s: &str) -> Expr {
    parse_filter(s, &SCHEMA, NOW).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> String {
    parse_filter(s, &SCHEMA, NOW).expect_err(s).to_string()
}

fn f(name: &str) -> &'static FieldDef {
    SCHEMA.field(name).unwrap()
}

fn cmp(name: &str, op: CmpOp, value: Value) -> Expr {
    Expr::Compare { field: f(name), op, value }
}

#[test]
fn comparisons_of_every_type() {
    assert_eq!(ok("status eq 'Active'"), cmp("status", CmpOp::Eq, Value::Text("Active".into())));
    assert_eq!(ok("failed_logins ge -3"), cmp("failed_logins", CmpOp::Ge, Value::Int(-3)));
    assert_eq!(ok("is_admin ne true"), cmp("is_admin", CmpOp::Ne, Value::Bool(true)));
    assert_eq!(
        ok("create_time lt 2030-01-01T00:00:00Z"),
        cmp("create_time", CmpOp::Lt, Value::Time(Timestamp(1_893_456_000)))
    );
    assert_eq!(
        ok("create_time le '2030-01-01T00:00:00+01:00'"),
        cmp("create_time", CmpOp::Le, Value::Time(Timestamp(1_893_452_400)))
    );
    assert_eq!(ok("end_time eq null"), cmp("end_time", CmpOp::Eq, Value::Null));
    assert_eq!(ok("status eq 'it''s'"), cmp("status", CmpOp::Eq, Value::Text("it's".into())));
    assert_eq!(ok("status eq 'über ✓'"), cmp("status", CmpOp::Eq, Value::Text("über ✓".into())));
}

#[test]
fn now_arithmetic_with_durations() {
    assert_eq!(
        ok("create_time gt now() sub PT2H"),
        cmp("create_time", CmpOp::Gt, Value::Time(Timestamp(1_000_000 - 7_200)))
    );
    assert_eq!(
        ok("create_time gt now() add P1DT30M"),
        cmp("create_time", CmpOp::Gt, Value::Time(Timestamp(1_000_000 + 88_200)))
    );
    assert_eq!(
        ok("create_time gt now() sub P1W add PT1S"),
        cmp("create_time", CmpOp::Gt, Value::Time(Timestamp(1_000_000 - 604_799)))
    );
    assert_eq!(ok("create_time lt now()"), cmp("create_time", CmpOp::Lt, Value::Time(NOW)));
}

#[test]
fn precedence_not_then_and_then_or() {
    let a = || cmp("status", CmpOp::Eq, Value::Text("a".into()));
    let b = || cmp("status", CmpOp::Eq, Value::Text("b".into()));
    let c = || cmp("status", CmpOp::Eq, Value::Text("c".into()));
    assert_eq!(
        ok("status eq 'a' or status eq 'b' and status eq 'c'"),
        Expr::Or(Box::new(a()), Box::new(Expr::And(Box::new(b()), Box::new(c()))))
    );
    assert_eq!(
        ok("(status eq 'a' or status eq 'b') and not status eq 'c'"),
        Expr::And(Box::new(Expr::Or(Box::new(a()), Box::new(b()))), Box::new(Expr::Not(Box::new(c()))))
    );
    assert_eq!(ok("not (status eq 'a')"), Expr::Not(Box::new(a())));
}

#[test]
fn in_lists_and_string_functions() {
    assert_eq!(
        ok("status in ('Ended', 'Terminated')"),
        Expr::In { field: f("status"), values: vec![Value::Text("Ended".into()), Value::Text("Terminated".into())] }
    );
    assert_eq!(
        ok("contains(status, 'ct')"),
        Expr::Func { func: StrFunc::Contains, field: f("status"), value: "ct".into() }
    );
    assert_eq!(
        ok("startswith(status,'A')"),
        Expr::Func { func: StrFunc::StartsWith, field: f("status"), value: "A".into() }
    );
    assert_eq!(
        ok("endswith(status, '%_')"),
        Expr::Func { func: StrFunc::EndsWith, field: f("status"), value: "%_".into() }
    );
}

#[test]
fn errors_name_the_position_and_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        (
            "statuz eq 'x'",
            "at 0: unknown field 'statuz'; known fields: status, failed_logins, create_time, end_time, is_admin",
        ),
        ("status eq", "at 9: expected a value after 'eq', found end of input"),
        ("failed_logins eq 'abc'", "at 17: field 'failed_logins' is a number; 'abc' is a string"),
        ("status eq 3", "at 10: field 'status' is a string; 3 is a number"),
        ("status eq 'open", "at 10: unterminated string: expected a closing '"),
        ("status eq 'a' and", "at 17: expected an expression after 'and', found end of input"),
        ("status eq 'a' or", "at 16: expected an expression after 'or', found end of input"),
        ("(status eq 'a'", "at 14: expected ')' to close the '(' at 0, found end of input"),
        ("status eq 'a')", "at 13: expected 'and', 'or' or the end of the filter, found ')'"),
        ("status in ()", "at 11: expected at least one value in 'in (...)'"),
        ("status like 'a'", "at 7: expected an operator (eq, ne, gt, ge, lt, le, in) after 'status', found 'like'"),
        (
            "create_time gt now() sub P1M",
            "at 25: 'P1M': years and months have no fixed length; use days (D) or weeks (W)",
        ),
        ("create_time gt now() sub 2", "at 25: expected an ISO 8601 duration such as PT2H, found the number 2"),
        (
            "create_time gt now() sub 2H",
            "at 25: '2H' is neither an integer nor an RFC 3339 time such as 2030-01-01T00:00:00Z",
        ),
        ("create_time gt now() sub PT1.5H", "at 25: 'PT1.5H': fractions are not supported; use whole units"),
        ("create_time gt 'yesterday'", "at 15: field 'create_time' is a time; 'yesterday' is not an RFC 3339 time"),
        (
            "failed_logins gt 12abc",
            "at 17: '12abc' is neither an integer nor an RFC 3339 time such as 2030-01-01T00:00:00Z",
        ),
        ("contains(failed_logins, 'x')", "at 0: contains works on strings; field 'failed_logins' is a number"),
        ("is_admin gt false", "at 9: field 'is_admin' is a boolean: use eq or ne"),
        ("end_time gt null", "at 12: null can only be compared with eq or ne"),
        ("status eq 'a' status", "at 14: expected 'and', 'or' or the end of the filter, found 'status'"),
        ("", "at 0: expected an expression, found an empty filter"),
        ("and eq 'x'", "at 0: expected a field name, found the keyword 'and'"),
        ("status eq 'a' # x", "at 14: unexpected character '#'"),
        ("status eq 'a\u{0}b'", "at 12: a string must not contain the NUL character (U+0000)"),
        ("contains(status, '\u{0}')", "at 18: a string must not contain the NUL character (U+0000)"),
    ];
    for (input, want) in cases {
        assert_eq!(&err(input), want, "input {input:?}");
    }
}

#[test]
fn hostile_inputs_are_bounded() {
    let deep = format!("{}status eq 'a'{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(err(&deep), "at 32: the filter nests deeper than 32 levels");
    let nots = format!("{}status eq 'a'", "not ".repeat(40));
    assert!(err(&nots).contains("nests deeper"));
    let long = format!("status eq '{}'", "a".repeat(5_000));
    assert!(err(&long).contains("at most 4096 characters"));
    let many = format!("failed_logins in ({})", (0..101).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    assert!(err(&many).contains("at most 100 values"));
}

#[test]
fn garbage_never_panics() {
    // A small deterministic fuzz: every prefix and many mutations of a rich filter.
    let seed =
        "not (status in ('a','b') or contains(status,'x')) and create_time gt now() sub P1DT2H and end_time eq null";
    let chars: Vec<char> = seed.chars().collect();
    for i in 0..=chars.len() {
        let _ = parse_filter(&chars[..i].iter().collect::<String>(), &SCHEMA, NOW);
    }
    let alphabet: Vec<char> = "()',' eqandornot0123456789-:TPZ.sx\u{e9}".chars().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..5_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut s = chars.clone();
        let at = (state as usize) % s.len();
        s[at] = alphabet[(state >> 32) as usize % alphabet.len()];
        let _ = parse_filter(&s.into_iter().collect::<String>(), &SCHEMA, NOW);
    }
}

#[test]
fn orderby_and_select() {
    let o = parse_orderby("create_time desc, status", &SCHEMA).unwrap();
    assert_eq!(
        o,
        vec![OrderBy { field: f("create_time"), descending: true }, OrderBy { field: f("status"), descending: false }]
    );
    assert_eq!(
        parse_orderby("status sideways", &SCHEMA).unwrap_err().to_string(),
        "at 7: expected 'asc' or 'desc' after 'status', found 'sideways'"
    );
    assert_eq!(parse_orderby("status, nope desc", &SCHEMA).unwrap_err().position, 8);
    // Positions count characters: after a multi-byte space the error still points inside the text
    // (found by the $filter fuzzer: "moid\u{3000}asc\u{3000}x").
    let text = "status\u{3000}asc\u{3000}x";
    let err = parse_orderby(text, &SCHEMA).unwrap_err();
    assert_eq!(err.position, 11, "{err}");
    assert!(err.position < text.chars().count());
    assert_eq!(parse_select("status,end_time", &SCHEMA).unwrap(), vec![f("status"), f("end_time")]);
    assert_eq!(
        parse_select("status,,end_time", &SCHEMA).unwrap_err().to_string(),
        "at 7: expected a field name in $select"
    );
}

#[test]
fn durations() {
    use super::parser::parse_duration;
    assert_eq!(parse_duration("PT2H"), Ok(7_200));
    assert_eq!(parse_duration("P1DT30M"), Ok(88_200));
    assert_eq!(parse_duration("P2W"), Ok(1_209_600));
    assert_eq!(parse_duration("PT90S"), Ok(90));
    for bad in ["P", "PT", "2H", "PTH", "P1H", "PT1D", "P1Y"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}
