//! The access lines, written without tracing-subscriber's general machinery.
//!
//! Every API and gateway request logs a line at `info` (the targets in [`ACCESS_TARGETS`]).
//! tracing-subscriber's formatter writes each piece through `core::fmt`, wraps every field name
//! in a colour style even when there is no colour, formats the timestamp field by field, and in
//! JSON makes a `String` per `%`-field: about 3 µs of CPU per line, a tenth of the cheapest
//! authenticated call. [`Lines`] writes those lines itself, **byte for byte as
//! tracing-subscriber would** (text or JSON; the tests compare the two), and hands every other
//! line, and any line inside a span or with colour on, to tracing-subscriber's formatter.

use std::fmt::{self, Write as _};

use tessera_domain::Timestamp;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The access logs' targets (the API's and the gateway's).
pub const ACCESS_TARGETS: [&str; 2] = ["tessera::access", "tessera::gateway::access"];

/// The event formatter: `inner` (tracing-subscriber's text or JSON format), except for access
/// lines outside any span without colour, which are written here the same way.
pub struct Lines<F> {
    pub inner: F,
    pub json: bool,
}

impl<S, N, F> FormatEvent<S, N> for Lines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if !ACCESS_TARGETS.contains(&meta.target()) || w.has_ansi_escapes() || ctx.event_scope().is_some() {
            return self.inner.format_event(ctx, w, event);
        }
        let mut stamp = [0u8; STAMP_LEN];
        let stamp = now(&mut stamp);
        if self.json {
            w.write_str("{\"timestamp\":\"")?;
            w.write_str(stamp)?;
            w.write_str("\",\"level\":\"")?;
            w.write_str(meta.level().as_str())?;
            w.write_str("\",\"fields\":{")?;
            let mut fields = JsonFields { w: &mut w, first: true, result: Ok(()) };
            event.record(&mut fields);
            fields.result?;
            w.write_str("},\"target\":")?;
            json_str(&mut w, meta.target())?;
            w.write_str("}\n")
        } else {
            w.write_str(stamp)?;
            w.write_char(' ')?;
            w.write_str(padded_level(meta.level()))?;
            w.write_char(' ')?;
            w.write_str(meta.target())?;
            w.write_str(": ")?;
            let sanitize = w.sanitizes_ansi_escapes();
            let mut fields = TextFields { w: &mut w, first: true, sanitize, result: Ok(()) };
            event.record(&mut fields);
            fields.result?;
            w.write_char('\n')
        }
    }
}

/// tracing-subscriber's level column (five wide).
fn padded_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

/// The fields as tracing-subscriber's `DefaultVisitor` writes them without colour: `message`
/// bare (its control characters escaped when the writer sanitizes), then `name=value` with
/// each value's `Debug`, separated by spaces.
struct TextFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    sanitize: bool,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    /// The field's name and `=`, after a space unless it is the first; `None` for `message`.
    fn start(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.w.write_char(' ')?;
        }
        let name = field.name();
        self.w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.w.write_char('=')
    }

    fn skip(&self, field: &Field) -> bool {
        self.result.is_err() || field.name().starts_with("log.")
    }
}

impl Visit for TextFields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skip(field) {
            return;
        }
        self.result = if field.name() == "message" {
            let pad = if std::mem::take(&mut self.first) { Ok(()) } else { self.w.write_char(' ') };
            pad.and_then(|()| {
                if self.sanitize { write!(Sanitizing(self.w), "{value:?}") } else { write!(self.w, "{value:?}") }
            })
        } else {
            self.start(field).and_then(|()| write!(self.w, "{value:?}"))
        };
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.record_debug(field, &format_args!("{value}"));
        }
        if self.skip(field) {
            return;
        }
        // `Debug` of a plain string is the string in quotes.
        let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        self.result = self.start(field).and_then(|()| {
            if plain {
                self.w.write_char('"')?;
                self.w.write_str(value)?;
                self.w.write_char('"')
            } else {
                write!(self.w, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.skip(field) {
            return;
        }
        self.result = self.start(field).and_then(|()| self.w.write_str(Decimal::new(value).as_str()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.skip(field) {
            return;
        }
        self.result = self.start(field).and_then(|()| self.w.write_str(Decimal::signed(value).as_str()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.skip(field) {
            return;
        }
        self.result = self.start(field).and_then(|()| self.w.write_str(if value { "true" } else { "false" }));
    }
}

/// tracing-subscriber's escaping of a `message`: terminal control characters written as
/// escapes, everything else as it is.
struct Sanitizing<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Sanitizing<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) =
            rest.find(|c: char| matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'))
        {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\0');
            match c {
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => write!(self.0, "\\x{:02x}", c as u32)?,
                _ => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// The fields as tracing-serde writes them into tracing-subscriber's JSON line: an object in
/// recording order; strings and `Debug` output as JSON strings, numbers and booleans as such.
struct JsonFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.w.write_char(',')?;
        }
        json_str(self.w, field.name())?;
        self.w.write_char(':')
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| {
                self.w.write_char('"')?;
                write!(JsonEscaping(self.w), "{value:?}")?;
                self.w.write_char('"')
            });
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| json_str(self.w, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.w.write_str(Decimal::new(value).as_str()));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.w.write_str(Decimal::signed(value).as_str()));
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_ok() {
            // serde_json's own number text (shortest round trip; `null` when not finite).
            let mut buf = [0u8; 40];
            let mut out = std::io::Cursor::new(&mut buf[..]);
            let written =
                serde_json::to_writer(&mut out, &value).ok().and_then(|()| usize::try_from(out.position()).ok());
            let text = written.and_then(|n| std::str::from_utf8(buf.get(..n)?).ok()).unwrap_or("null");
            self.result = self.key(field).and_then(|()| self.w.write_str(text));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.w.write_str(if value { "true" } else { "false" }));
        }
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    JsonEscaping(w).write_str(s)?;
    w.write_char('"')
}

/// Writes through serde_json's string escapes: `"`, `\` and the C0 controls.
struct JsonEscaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for JsonEscaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.bytes().position(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.0.write_str(&rest[..at])?;
            let b = rest.as_bytes()[at];
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            rest = &rest[at + 1..];
        }
        self.0.write_str(rest)
    }
}

/// A number's decimal digits (and sign) on the stack.
struct Decimal {
    buf: [u8; 21],
    start: usize,
}

impl Decimal {
    fn new(n: u64) -> Self {
        Self::with_sign(n, false)
    }

    fn signed(n: i64) -> Self {
        Self::with_sign(n.unsigned_abs(), n < 0)
    }

    fn with_sign(mut n: u64, negative: bool) -> Self {
        let mut buf = [0u8; 21];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            start -= 1;
            buf[start] = b'-';
        }
        Self { buf, start }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and '-' were written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

const STAMP_LEN: usize = 27;

/// The current time as tracing-subscriber's `SystemTime` timer writes it
/// (`2026-11-30T18:37:07.123456Z`).
fn now(buf: &mut [u8; STAMP_LEN]) -> &str {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    stamp(since.as_secs(), since.subsec_micros(), buf)
}

/// The UTC time `secs` seconds and `micros` microseconds after the Unix epoch: the API's
/// own RFC 3339 text ([`Timestamp::rfc3339`]) with six fractional digits before the `Z`.
fn stamp(secs: u64, micros: u32, buf: &mut [u8; STAMP_LEN]) -> &str {
    let whole = Timestamp::from_unix(i64::try_from(secs).unwrap_or(i64::MAX)).rfc3339();
    // `YYYY-MM-DDTHH:MM:SSZ`; anything else (a year past 9999) is not a log's time.
    let Some(date_time) = whole.as_str().strip_suffix('Z').filter(|t| t.len() == 19) else {
        return "9999-12-31T23:59:59.999999Z";
    };
    buf[..19].copy_from_slice(date_time.as_bytes());
    buf[19] = b'.';
    let mut n = micros.min(999_999);
    for slot in buf[20..26].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf[26] = b'Z';
    // Only ASCII was written.
    std::str::from_utf8(buf).unwrap_or("1970-01-01T00:00:00.000000Z")
}

/// tracing-subscriber's timer with [`now`]'s formatting (the same text, on the stack), for the
/// lines [`Lines`] hands to tracing-subscriber.
pub struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let mut buf = [0u8; STAMP_LEN];
        w.write_str(now(&mut buf))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Out {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Out {
        type Writer = Out;

        fn make_writer(&'a self) -> Out {
            self.clone()
        }
    }

    impl Out {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// Every shape of field the access lines carry, with values chosen to need escapes.
    fn events() {
        let org = "0b1c2d3e-0000-4000-8000-000000000001";
        tracing::info!(
            target: "tessera::access",
            request_id = %"3f2a9c1e-00000000002a",
            method = %"GET",
            route = "/v2/users/{user_id}",
            status = 200u16,
            latency_ms = 0.123456,
            org = %org,
            principal = %"workload:iss-1:a subject with spaces",
            credential = "api_key",
            credential_id = %"k-1",
            "request"
        );
        tracing::info!(target: "tessera::access", request_id = %"", method = %"POST", route = "-", status = 431u16, latency_ms = 1e-7, "request");
        tracing::info!(
            target: "tessera::gateway::access",
            request_id = "q\"uo\\te",
            method = %"PROPFIND",
            path = %"/a\"b/\u{e9}",
            status = 502u64,
            latency_ms = 123_456_789.5,
            client = %"::1",
            "gateway request"
        );
        tracing::info!(
            target: "tessera::access",
            odd = "tab\there\nnewline \u{1b}[31m red \u{7} bell \u{85} c1 \u{7f} del \u{0} nul é",
            shown = %"raw \"display\" \u{1b}[0m",
            negative = -42i64,
            big = u64::MAX,
            small = i64::MIN,
            yes = true,
            no = false,
            nan = f64::NAN,
            inf = f64::INFINITY,
            r#type = "keyword",
            "message with \u{1b}[2J escapes \u{7} and \u{9b} C1"
        );
        tracing::info!(target: "tessera::access", "only a message");
        tracing::info!(target: "tessera::access", status = 200u16);
        // Not access lines: tracing-subscriber's own formatter writes these, spans included.
        tracing::warn!(target: "tessera::other", field = 1, "elsewhere");
        let span = tracing::info_span!("outer", id = 7);
        let _in = span.enter();
        tracing::info!(target: "tessera::access", status = 204u16, "inside a span");
    }

    /// The lines without their timestamps (which differ between two runs), after checking
    /// each has one of the right shape at `at`.
    fn without_time(text: &str, at: usize) -> Vec<String> {
        text.lines()
            .map(|l| {
                let stamp = &l[at..at + STAMP_LEN];
                assert!(stamp.ends_with('Z') && &stamp[10..11] == "T" && &stamp[19..20] == ".", "{l}");
                format!("{}{}", &l[..at], &l[at + STAMP_LEN..])
            })
            .collect()
    }

    fn run(subscriber: impl Subscriber + Send + Sync + 'static) {
        tracing::subscriber::with_default(subscriber, events);
    }

    #[test]
    fn text_access_lines_are_byte_for_byte_what_tracing_subscriber_writes() {
        let (ours, theirs) = (Out::default(), Out::default());
        let format = tracing_subscriber::fmt::format().with_timer(Clock);
        run(tracing_subscriber::fmt()
            .with_writer(ours.clone())
            .with_ansi(false)
            .event_format(Lines { inner: format, json: false })
            .finish());
        run(tracing_subscriber::fmt().with_writer(theirs.clone()).with_ansi(false).finish());
        let (ours, theirs) = (ours.text(), theirs.text());
        assert_eq!(ours.lines().count(), 8, "{ours}");
        assert_eq!(without_time(&ours, 0), without_time(&theirs, 0), "ours:\n{ours}\ntheirs:\n{theirs}");
        // The comparison saw the escapes it is about.
        assert!(ours.contains(r"\x1b[2J") && ours.contains(r#"odd="tab\there"#), "{ours}");
    }

    #[test]
    fn json_access_lines_are_byte_for_byte_what_tracing_subscriber_writes() {
        let (ours, theirs) = (Out::default(), Out::default());
        let format = tracing_subscriber::fmt::format().with_timer(Clock);
        run(tracing_subscriber::fmt()
            .with_writer(ours.clone())
            .json()
            .event_format(Lines { inner: format.json(), json: true })
            .finish());
        run(tracing_subscriber::fmt().with_writer(theirs.clone()).json().finish());
        let (ours, theirs) = (ours.text(), theirs.text());
        assert_eq!(ours.lines().count(), 8, "{ours}");
        let at = "{\"timestamp\":\"".len();
        assert_eq!(without_time(&ours, at), without_time(&theirs, at), "ours:\n{ours}\ntheirs:\n{theirs}");
        for line in ours.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        }
        assert!(ours.contains(r#""nan":null"#) && ours.contains(r"\u0000"), "{ours}");
    }

    #[test]
    fn timestamps_match_the_calendar() {
        let mut buf = [0u8; STAMP_LEN];
        // Every day boundary of 1999–2001 and 2099–2101 (leap rules of 4, 100 and 400), both
        // sides of each, and a few edges.
        let mut instants = vec![0, 1, 951_782_399, 951_868_800, 4_102_444_800, 253_402_300_799];
        for start in [915_148_800u64, 4_070_908_800] {
            for day in 0..(3 * 366) {
                let t = start + day * 86_400;
                instants.extend([t.saturating_sub(1), t, t + 43_210]);
            }
        }
        for secs in instants {
            let t = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                123_456
            );
            assert_eq!(stamp(secs, 123_456, &mut buf), want, "at {secs}");
        }
    }
}
