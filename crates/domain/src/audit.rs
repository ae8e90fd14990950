//! The audit trail's record: who did what to which object, when, from where, and how it ended.
//!
//! An event never holds a secret: no password, hash, token or plugin secret, and no request
//! body. `reason` is a short sentence the app writes itself (a refusal's message, "logout").

use uuid::Uuid;

use crate::Timestamp;
use crate::ids::OrgId;

/// How the actor authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    ApiKey,
    LoginSession,
    RoleSession,
    GatewaySession,
    /// Tessera itself (the first start's bootstrap).
    System,
    /// Nobody yet: a sign-in attempt.
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::LoginSession => "login_session",
            Self::RoleSession => "role_session",
            Self::GatewaySession => "gateway_session",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "api_key" => Self::ApiKey,
            "login_session" => Self::LoginSession,
            "role_session" => Self::RoleSession,
            "gateway_session" => Self::GatewaySession,
            "system" => Self::System,
            "anonymous" => Self::Anonymous,
            _ => return None,
        })
    }
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditResult {
    /// The change was made (and committed with this record).
    Success,
    /// The attempt was refused for what it claimed (a wrong password, a locked account).
    Failure,
    /// The caller was not allowed the action (403).
    Denied,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "denied" => Self::Denied,
            _ => return None,
        })
    }
}

/// One audit record. Text fields that do not apply are empty, never absent, so every field
/// can be filtered and ordered on alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Time-ordered (UUID version 7 layout), drawn by the app.
    pub id: Uuid,
    pub org_id: OrgId,
    pub time: Timestamp,
    pub actor_kind: ActorKind,
    /// The acting user's id (empty for an anonymous or system actor).
    pub actor_id: String,
    pub actor_email: String,
    /// The API key's or session's public id the actor used (never its token).
    pub credential_id: String,
    /// The named action (`iam.user.Create`, `iam.session.SignIn`, ...).
    pub action: String,
    /// What the action is about: `user`, `group`, `policy`, `session`, ... and its id
    /// (`*` when the attempt was refused before an id existed).
    pub target_kind: String,
    pub target_id: String,
    /// The client's address as the server decided it (trusted proxies honoured).
    pub source_ip: String,
    pub request_id: String,
    pub result: AuditResult,
    pub reason: String,
}

/// The longest request id a client may choose (`X-Request-Id`).
pub const MAX_CLIENT_REQUEST_ID: usize = 200;

/// Whether a client's `X-Request-Id` is kept (echoed, forwarded upstream, written to the
/// audit trail and the access logs): 1 to [`MAX_CLIENT_REQUEST_ID`] characters, each a letter,
/// a digit or one of `-._:;/+=@` (UUIDs, hex, base64, W3C trace ids, `Root=…;Parent=…`). Any
/// other id is replaced by one the server makes: a space, a quote or a control character in a
/// text log line would let a client forge the line's other fields.
pub fn is_plain_request_id(id: &[u8]) -> bool {
    (1..=MAX_CLIENT_REQUEST_ID).contains(&id.len())
        && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-._:;/+=@".contains(b))
}

/// The longest `reason` kept; a refusal's message fits, a pasted body would not.
pub const MAX_REASON: usize = 300;

impl AuditEvent {
    /// Sets `reason` with its control characters escaped (see [`escaped`]), cut to
    /// [`MAX_REASON`] characters. A refusal's message may quote what a client or a token
    /// said; whatever it quotes, the event can be stored (PostgreSQL's text cannot hold a NUL)
    /// and shown without control sequences.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = escaped(&reason.into(), MAX_REASON);
        self
    }
}

/// `s` with control characters, line and paragraph separators and bidi controls escaped as
/// Rust writes them (`\0`, `\n`, `\u{202e}`), at most `max` characters of the original
/// (then `…`). For any text from outside that a message quotes: the message reaches the
/// caller, the audit trail and the logs.
pub fn escaped(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_request_ids_are_kept_and_others_are_not() {
        for kept in [
            "client-7",
            "3f2a9c1e-00000000002a",
            "00-4bf92f3577b34da6-01",
            "Root=1-5759e988;Parent=53995c3f",
            "YWJj+/=",
            "a@b.c:d_e",
        ] {
            assert!(is_plain_request_id(kept.as_bytes()), "{kept}");
        }
        let longest = "a".repeat(MAX_CLIENT_REQUEST_ID);
        assert!(is_plain_request_id(longest.as_bytes()));
        for refused in ["", "a b", "x status=500", "a\"b", "a'b", "a\tb", "a\nb", "a\u{1b}[31mb", "a,b", "<a>", "é"] {
            assert!(!is_plain_request_id(refused.as_bytes()), "{refused:?}");
        }
        assert!(!is_plain_request_id(format!("{longest}a").as_bytes()));
    }

    #[test]
    fn reasons_are_stored_with_control_characters_escaped_and_cut() {
        let e = AuditEvent {
            id: Uuid::nil(),
            org_id: OrgId(Uuid::nil()),
            time: Timestamp(0),
            actor_kind: ActorKind::Anonymous,
            actor_id: String::new(),
            actor_email: String::new(),
            credential_id: String::new(),
            action: "iam.role.AssumeRole".into(),
            target_kind: "role".into(),
            target_id: "*".into(),
            source_ip: String::new(),
            request_id: String::new(),
            result: AuditResult::Denied,
            reason: String::new(),
        };
        let e = e.with_reason("sub 'repo:evil\u{0}\u{1b}[2J\u{202e}x\n' does not match");
        assert_eq!(e.reason, "sub 'repo:evil\\0\\u{1b}[2J\\u{202e}x\\n' does not match");
        assert!(!e.reason.contains('\u{0}'));
        let long = e.with_reason("é".repeat(MAX_REASON + 5));
        assert_eq!(long.reason, format!("{}…", "é".repeat(MAX_REASON)));
        assert_eq!(escaped("plain text, 'quoted' — ünïcode", 100), "plain text, 'quoted' — ünïcode");
    }

    #[test]
    fn names_round_trip() {
        for k in [
            ActorKind::ApiKey,
            ActorKind::LoginSession,
            ActorKind::RoleSession,
            ActorKind::GatewaySession,
            ActorKind::System,
            ActorKind::Anonymous,
        ] {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
        }
        for r in [AuditResult::Success, AuditResult::Failure, AuditResult::Denied] {
            assert_eq!(AuditResult::parse(r.as_str()), Some(r));
        }
        assert_eq!(ActorKind::parse("root"), None);
    }
}
