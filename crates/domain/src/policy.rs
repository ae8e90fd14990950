//! Policy documents and their evaluation: `service.resource.Operation` actions with `*` at
//! any dotted level, resources as ids or `*`, an explicit Deny that always wins.

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, FieldError};

/// The document version new policies get when they name none.
pub const DEFAULT_POLICY_VERSION: &str = "2026-03-20";

/// The most actions one statement of a written document may list. Above what a real
/// statement lists (Tessera has fewer than 100 actions, and 200 real action names fill a
/// managed policy's size anyway), so on real documents only the size bounds; it names the
/// statement when a generated document runs away.
pub const MAX_ACTIONS_PER_STATEMENT: usize = 200;

/// The most resources one statement of a written document may list (157 ids fill a managed
/// policy's size; only short prefixes could reach this).
pub const MAX_RESOURCES_PER_STATEMENT: usize = 200;

/// What a document a caller writes is for, which decides how large it may be. The sizes are
/// AWS IAM's, in AWS's measure: characters of the document's JSON without the whitespace
/// outside strings ([`packed_chars`]).
///
/// They bound writes only: a document stored before a bound existed still loads and applies
/// ([`PolicyDocument::from_json`]), so lowering a bound never breaks a running organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentUse {
    /// A managed policy (`/v2/policies`): at most 6 144 characters, as AWS's.
    Managed,
    /// A session policy (assume's `policy`, STS's `Policy`): at most 2 048 characters, as
    /// AWS's. It is stored with its session, kept with it in the session and permission
    /// caches, and evaluated on every request of the session, so any caller allowed to assume
    /// a role could otherwise make sessions hundreds of times their usual size.
    Session,
}

impl DocumentUse {
    /// The most characters its packed JSON may hold.
    pub const fn max_packed_chars(self) -> usize {
        match self {
            Self::Managed => 6144,
            Self::Session => 2048,
        }
    }

    /// What share of the bound `packed` characters use, in whole percent rounded up: STS's
    /// `PackedPolicySize`.
    pub const fn percent_of_max(self, packed: usize) -> usize {
        (packed * 100).div_ceil(self.max_packed_chars())
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Managed => "a managed policy",
            Self::Session => "a session policy",
        }
    }
}

/// The characters of `doc` as compact JSON: whitespace outside strings is not counted, and an
/// escape counts as the character it stands for (`\u00e9` is one, like `é`), as the document
/// came in (a [`PolicyDocumentJson`], or the JSON value it was read from: the same count).
/// Counted as it is written out, without a copy.
pub fn packed_chars(doc: &impl Serialize) -> usize {
    /// Counts the characters of UTF-8 written to it: every byte but a continuation byte.
    struct Chars(usize);
    impl std::io::Write for Chars {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.iter().filter(|&&b| b & 0xC0 != 0x80).count();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut chars = Chars(0);
    // A document of strings and lists always serializes; should one ever fail, it counts as
    // larger than any bound (refused, never let through unmeasured).
    serde_json::to_writer(&mut chars, doc).map_or(usize::MAX, |()| chars.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A dotted action pattern such as `iam.role.*` or `*`, checked once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionPattern(String);

impl ActionPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::check(s)?;
        Ok(Self(s.to_owned()))
    }

    /// Whether `s` is an action pattern, without keeping it: [`Self::parse`]'s error if not.
    pub fn check(s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err("an action must not be empty".into());
        }
        if s.len() > 256 {
            return Err("an action must be at most 256 characters".into());
        }
        for segment in s.split('.') {
            let ok = segment == "*"
                || (!segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            if !ok {
                return Err(format!(
                    "'{s}' is not an action: expected dotted names like 'iam.role.Read', with '*' for a whole level"
                ));
            }
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this pattern covers `action`. A `*` segment matches one level, and a trailing
    /// `*` matches every deeper level too, so `iam.*` covers `iam.role.Read`.
    ///
    /// The two common shapes are decided without splitting either text (every authorized
    /// request runs this once per action of every statement): a pattern without `*` covers
    /// exactly the actions equal to it ignoring ASCII case, and `prefix.*` (or `*`) covers
    /// every action that starts with `prefix.` (any action). A `*` in the middle walks the
    /// levels.
    pub fn matches(&self, action: &str) -> bool {
        let p = self.0.as_bytes();
        match p.iter().position(|&b| b == b'*') {
            None => self.0.eq_ignore_ascii_case(action),
            // A parsed `*` is a whole level, so the byte before a trailing one is a dot.
            Some(star) if star + 1 == p.len() => {
                action.len() >= star && action.as_bytes()[..star].eq_ignore_ascii_case(&p[..star])
            }
            Some(_) => self.matches_by_level(action),
        }
    }

    /// [`Self::matches`], one dotted level at a time.
    fn matches_by_level(&self, action: &str) -> bool {
        let mut pattern = self.0.split('.');
        let mut target = action.split('.');
        loop {
            match (pattern.next(), target.next()) {
                (Some("*"), Some(_)) => {
                    if pattern.clone().next().is_none() {
                        return true;
                    }
                }
                (Some(p), Some(t)) => {
                    if !p.eq_ignore_ascii_case(t) {
                        return false;
                    }
                }
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

/// A resource pattern: `*`, an exact id, or a prefix ending in `*`.
///
/// Ids are compared as the API prints them (lower-case, hyphenated), so the pattern is put in
/// that form when it is parsed: `{0E8F…}`, `0E8F…` and `urn:uuid:0e8f…` all become `0e8f…`, and
/// a prefix made only of hex digits and hyphens is lower-cased. Otherwise a Deny naming an id
/// in another spelling would be stored and never match. Braces around anything but a whole id
/// are refused rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePattern(String);

impl ResourcePattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 256 {
            return Err("a resource must be 1 to 256 characters".into());
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("{s:?}: a resource must not contain spaces or control characters"));
        }
        // The last character may be multi-byte: look at every character but the last one.
        if s.char_indices().any(|(i, c)| c == '*' && i + 1 < s.len()) {
            return Err(format!("'{s}': '*' is only allowed at the end of a resource"));
        }
        if let Some(prefix) = s.strip_suffix('*') {
            if prefix.contains(['{', '}']) {
                return Err(format!("'{s}': braces are not part of an id; write ids as 0e8f…-…, without braces"));
            }
            let id_prefix = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            return Ok(Self(if id_prefix { s.to_ascii_lowercase() } else { s.to_owned() }));
        }
        if let Ok(id) = uuid::Uuid::parse_str(s) {
            return Ok(Self(id.hyphenated().to_string()));
        }
        if s.contains(['{', '}']) {
            return Err(format!("'{s}': braces are not part of an id; write ids as 0e8f…-…, without braces"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn matches(&self, resource: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => resource.starts_with(prefix),
            None => self.0 == resource,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<ActionPattern>,
    pub resources: Vec<ResourcePattern>,
}

impl Statement {
    fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|a| a.matches(action)) && self.resources.iter().any(|r| r.matches(resource))
    }
}

/// A validated policy document (`{"Version", "Statement": [...]}` on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: String,
    pub statements: Vec<Statement>,
}

/// The wire form, kept here because it is also the stored form: a document is stored as the
/// JSON the user sent, normalised (lists always lists).
///
/// Written out before it is normalised, it is what the caller sent without the whitespace
/// (absent fields stay absent), which is what [`packed_chars`] measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocumentJson {
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "Statement")]
    pub statement: Vec<StatementJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementJson {
    #[serde(rename = "Effect")]
    pub effect: String,
    #[serde(rename = "Action")]
    pub action: OneOrMany,
    /// Absent means every resource (`*`); `null` is refused, as it always was.
    #[serde(rename = "Resource", default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub resource: Option<OneOrMany>,
}

/// A field that may be absent (`None`, by `default`) but not `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<OneOrMany>, D::Error> {
    OneOrMany::deserialize(d).map(Some)
}

/// `"x"` or `["x", "y"]`, as Vultr accepts both.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn len(&self) -> usize {
        match self {
            OneOrMany::One(_) => 1,
            OneOrMany::Many(v) => v.len(),
        }
    }
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

impl PolicyDocument {
    /// Validates a document a caller writes, `used_as` a managed or a session policy: the rules
    /// of [`Self::from_json`], and the bounds of writing: the packed size of its use
    /// ([`DomainError::TooLarge`] naming `field`), at most [`MAX_ACTIONS_PER_STATEMENT`]
    /// actions and [`MAX_RESOURCES_PER_STATEMENT`] resources in a statement.
    pub fn from_written_json(doc: PolicyDocumentJson, used_as: DocumentUse, field: &str) -> Result<Self, DomainError> {
        let (packed, max) = (packed_chars(&doc), used_as.max_packed_chars());
        if packed > max {
            return Err(DomainError::TooLarge(FieldError::new(
                field,
                format!(
                    "{} is at most {max} characters of JSON, whitespace outside strings not counted; this one has {packed}",
                    used_as.noun()
                ),
            )));
        }
        Ok(Self::validate(doc, field, true)?)
    }

    /// Validates a document as stored; `field` is the JSON path prefix used in error messages.
    ///
    /// Only the rules every document follows, without the bounds on writing, so a document
    /// stored before a bound existed (or was lowered) still loads and applies. A document a
    /// caller sends goes through [`Self::from_written_json`].
    pub fn from_json(doc: PolicyDocumentJson, field: &str) -> Result<Self, FieldError> {
        Self::validate(doc, field, false)
    }

    /// [`Self::from_json`], with the per-statement bounds of writing when `written`.
    fn validate(doc: PolicyDocumentJson, field: &str, written: bool) -> Result<Self, FieldError> {
        if doc.statement.is_empty() {
            return Err(FieldError::new(format!("{field}.Statement"), "a policy needs at least one statement"));
        }
        if doc.statement.len() > 100 {
            return Err(FieldError::new(format!("{field}.Statement"), "a policy holds at most 100 statements"));
        }
        let mut statements = Vec::with_capacity(doc.statement.len());
        for (i, s) in doc.statement.into_iter().enumerate() {
            let at = format!("{field}.Statement[{i}]");
            let effect = match s.effect.as_str() {
                "Allow" | "allow" => Effect::Allow,
                "Deny" | "deny" => Effect::Deny,
                other => {
                    return Err(FieldError::new(
                        format!("{at}.Effect"),
                        format!("expected \"Allow\" or \"Deny\", found \"{other}\""),
                    ));
                }
            };
            let resources = s.resource.unwrap_or_else(|| OneOrMany::One("*".into()));
            if written {
                let (actions, resources) = (s.action.len(), resources.len());
                if actions > MAX_ACTIONS_PER_STATEMENT {
                    return Err(FieldError::new(
                        format!("{at}.Action"),
                        format!(
                            "a statement lists at most {MAX_ACTIONS_PER_STATEMENT} actions; this one lists {actions}"
                        ),
                    ));
                }
                if resources > MAX_RESOURCES_PER_STATEMENT {
                    return Err(FieldError::new(
                        format!("{at}.Resource"),
                        format!(
                            "a statement lists at most {MAX_RESOURCES_PER_STATEMENT} resources; this one lists {resources}"
                        ),
                    ));
                }
            }
            let actions = s.action.into_vec();
            if actions.is_empty() {
                return Err(FieldError::new(format!("{at}.Action"), "at least one action is required"));
            }
            let actions = actions
                .iter()
                .map(|a| ActionPattern::parse(a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| FieldError::new(format!("{at}.Action"), m))?;
            let resources = resources.into_vec();
            if resources.is_empty() {
                return Err(FieldError::new(format!("{at}.Resource"), "at least one resource is required"));
            }
            let resources = resources
                .iter()
                .map(|r| ResourcePattern::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| FieldError::new(format!("{at}.Resource"), m))?;
            statements.push(Statement { effect, actions, resources });
        }
        Ok(Self { version: doc.version.unwrap_or_else(|| DEFAULT_POLICY_VERSION.to_owned()), statements })
    }

    pub fn to_json(&self) -> PolicyDocumentJson {
        PolicyDocumentJson {
            version: Some(self.version.clone()),
            statement: self
                .statements
                .iter()
                .map(|s| StatementJson {
                    effect: match s.effect {
                        Effect::Allow => "Allow".into(),
                        Effect::Deny => "Deny".into(),
                    },
                    action: OneOrMany::Many(s.actions.iter().map(|a| a.0.clone()).collect()),
                    resource: Some(OneOrMany::Many(s.resources.iter().map(|r| r.0.clone()).collect())),
                })
                .collect(),
        }
    }

    /// A document allowing every action on every resource: the bootstrap administrator's.
    pub fn allow_all() -> Self {
        Self {
            version: DEFAULT_POLICY_VERSION.into(),
            statements: vec![Statement {
                effect: Effect::Allow,
                actions: vec![ActionPattern("*".into())],
                resources: vec![ResourcePattern("*".into())],
            }],
        }
    }
}

/// The outcome of evaluating a request against a set of policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allowed the action.
    ImplicitDeny,
    /// A statement denied it; deny always wins.
    ExplicitDeny,
}

/// The effective policies of one principal, flattened for evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet {
    /// Shared, so a bounded copy of a cached set costs no copy of its statements.
    statements: std::sync::Arc<[Statement]>,
    /// A bound the set never exceeds (a session policy, as AWS STS has them): an action is
    /// allowed only when the bound allows it too, and a deny in the bound denies.
    within: Option<std::sync::Arc<PermissionSet>>,
}

impl PermissionSet {
    pub fn from_documents<'a>(docs: impl IntoIterator<Item = &'a PolicyDocument>) -> Self {
        Self { statements: docs.into_iter().flat_map(|d| d.statements.iter().cloned()).collect(), within: None }
    }

    /// This set intersected with `bound`: never more than either allows.
    pub fn within(&self, bound: std::sync::Arc<PermissionSet>) -> Self {
        Self { statements: self.statements.clone(), within: Some(bound) }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Evaluates `action` on `resource` (an object id, or `*` for collection-level actions).
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for s in self.statements.iter() {
            if s.covers(action, resource) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        match (allowed, &self.within) {
            (true, Some(bound)) => bound.evaluate(action, resource),
            (true, None) => Decision::Allow,
            (false, _) => Decision::ImplicitDeny,
        }
    }

    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.evaluate(action, resource) == Decision::Allow
    }
}

/// Parses a policy document from JSON text (used by stores and tests that keep documents as text).
pub fn parse_document_json(text: &str) -> Result<PolicyDocumentJson, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_set_allows_only_what_both_allow() {
        let doc = |json: &str| PolicyDocument::from_json(serde_json::from_str(json).unwrap(), "p").unwrap();
        let role =
            PermissionSet::from_documents([&doc(r#"{"Statement":[{"Effect":"Allow","Action":["iam.user.*"]}]}"#)]);
        let session = doc(
            r#"{"Statement":[{"Effect":"Allow","Action":["iam.user.List","iam.group.List"]},{"Effect":"Deny","Action":"iam.user.Delete"}]}"#,
        );
        let bounded = role.within(std::sync::Arc::new(PermissionSet::from_documents([&session])));
        assert_eq!(bounded.evaluate("iam.user.List", "*"), Decision::Allow, "both allow");
        assert_eq!(bounded.evaluate("iam.user.Read", "*"), Decision::ImplicitDeny, "the bound does not allow");
        assert_eq!(bounded.evaluate("iam.group.List", "*"), Decision::ImplicitDeny, "never more than the role");
        assert_eq!(bounded.evaluate("iam.user.Delete", "*"), Decision::ExplicitDeny, "a deny in the bound denies");
        assert_eq!(role.evaluate("iam.user.Read", "*"), Decision::Allow, "the role's own set is unchanged");
    }

    fn doc(json: &str) -> PolicyDocument {
        PolicyDocument::from_json(serde_json::from_str(json).unwrap(), "policy_document").unwrap()
    }

    #[test]
    fn wildcards_match_at_any_dotted_level() {
        let p = |s: &str| ActionPattern::parse(s).unwrap();
        assert!(p("*").matches("iam.role.Read"));
        assert!(p("iam.*").matches("iam.role.Read"));
        assert!(p("iam.role.*").matches("iam.role.AssumeRole"));
        assert!(p("iam.*.Read").matches("iam.user.Read"));
        assert!(!p("iam.*.Read").matches("iam.user.Create"));
        assert!(!p("iam.role.*").matches("iam.roles.Read"));
        assert!(!p("iam.role").matches("iam.role.Read"));
        assert!(!p("iam.role.Read").matches("iam.role"));
        assert!(!p("compute.*").matches("iam.role.Read"));
        assert!(p("iam.role.read").matches("iam.role.Read"), "operation names are case-insensitive");
    }

    /// The shortcuts of `matches` decide exactly what the level-by-level walk decides, over
    /// every pattern and action built from a small alphabet of levels (with case changes,
    /// empty levels, a trailing dot and a non-ASCII level on the action's side).
    #[test]
    fn the_shortcuts_agree_with_the_level_by_level_walk() {
        let pattern_levels = ["*", "iam", "IAM", "role", "Read", "r"];
        let action_levels = ["", "iam", "Iam", "role", "read", "r", "é", "*"];
        let join = |levels: &[&str], shape: &[usize]| shape.iter().map(|&i| levels[i]).collect::<Vec<_>>().join(".");
        let shapes = |n: usize| -> Vec<Vec<usize>> {
            let mut all = vec![vec![]];
            for _ in 0..3 {
                let longer: Vec<Vec<usize>> =
                    all.iter().flat_map(|s| (0..n).map(move |i| [s.clone(), vec![i]].concat())).collect();
                all.extend(longer.into_iter().filter(|s: &Vec<usize>| s.len() <= 3));
                all.sort();
                all.dedup();
            }
            all.retain(|s| !s.is_empty());
            all
        };
        let patterns: Vec<ActionPattern> = shapes(pattern_levels.len())
            .iter()
            .map(|s| ActionPattern::parse(&join(&pattern_levels, s)).unwrap())
            .collect();
        let mut actions: Vec<String> = shapes(action_levels.len()).iter().map(|s| join(&action_levels, s)).collect();
        actions.extend(["".into(), "iam.".into(), ".iam".into(), "iam.role.".into()]);
        let (mut pairs, mut matched) = (0, 0);
        for p in &patterns {
            for a in &actions {
                let walked = p.matches_by_level(a);
                assert_eq!(p.matches(a), walked, "{:?} against {a:?}", p.as_str());
                pairs += 1;
                matched += usize::from(walked);
            }
        }
        assert!(pairs > 50_000 && matched > 1_000 && matched < pairs / 2, "{pairs} pairs, {matched} matched");
    }

    #[test]
    fn malformed_actions_are_rejected_with_reason() {
        assert!(ActionPattern::parse("").is_err());
        assert!(ActionPattern::parse("iam..Read").is_err());
        assert!(ActionPattern::parse("iam.ro*le.Read").is_err());
        assert!(ActionPattern::parse("iam role").is_err());
    }

    #[test]
    fn deny_wins_and_absence_denies() {
        let allow = doc(r#"{"Statement":[{"Effect":"Allow","Action":"iam.*","Resource":"*"}]}"#);
        let deny = doc(r#"{"Statement":[{"Effect":"Deny","Action":["iam.user.Delete"],"Resource":["*"]}]}"#);
        let set = PermissionSet::from_documents([&allow, &deny]);
        assert_eq!(set.evaluate("iam.user.Read", "*"), Decision::Allow);
        assert_eq!(set.evaluate("iam.user.Delete", "u1"), Decision::ExplicitDeny);
        assert_eq!(set.evaluate("compute.instance.Create", "*"), Decision::ImplicitDeny);
        assert_eq!(PermissionSet::default().evaluate("iam.user.Read", "*"), Decision::ImplicitDeny);
    }

    #[test]
    fn resources_scope_statements_to_ids() {
        let d =
            doc(r#"{"Statement":[{"Effect":"Allow","Action":"iam.role.AssumeRole","Resource":["role-1","team-*"]}]}"#);
        let set = PermissionSet::from_documents([&d]);
        assert!(set.allows("iam.role.AssumeRole", "role-1"));
        assert!(set.allows("iam.role.AssumeRole", "team-42"));
        assert!(!set.allows("iam.role.AssumeRole", "role-2"));
        assert!(ResourcePattern::parse("a*b").is_err());
    }

    #[test]
    fn document_errors_name_the_path() {
        let bad: PolicyDocumentJson =
            serde_json::from_str(r#"{"Statement":[{"Effect":"Maybe","Action":"x"}]}"#).unwrap();
        let err = PolicyDocument::from_json(bad, "policy_document").unwrap_err();
        assert_eq!(err.field, "policy_document.Statement[0].Effect");
        let empty: PolicyDocumentJson = serde_json::from_str(r#"{"Statement":[]}"#).unwrap();
        assert!(PolicyDocument::from_json(empty, "d").is_err());
        let null_resource = r#"{"Statement":[{"Effect":"Allow","Action":"x","Resource":null}]}"#;
        assert!(parse_document_json(null_resource).is_err(), "a null resource is not every resource");
        let bad_action: PolicyDocumentJson =
            serde_json::from_str(r#"{"Statement":[{"Effect":"Allow","Action":["ok.x","no pe"]}]}"#).unwrap();
        assert_eq!(PolicyDocument::from_json(bad_action, "d").unwrap_err().field, "d.Statement[0].Action");
    }

    #[test]
    fn a_resource_ending_in_a_multi_byte_character_is_parsed_not_panicked_on() {
        // Found by the policy fuzzer: the '*' check sliced the text one byte before its end.
        assert!(ResourcePattern::parse("é").is_ok());
        assert!(ResourcePattern::parse("users/é*").is_ok());
        assert!(ResourcePattern::parse("a*é").is_err());
    }

    #[test]
    fn resource_ids_are_stored_in_the_form_they_are_compared_in() {
        let id = "0e8f5c2a-1b3d-4c5e-8f70-123456789abc";
        for spelling in [
            "0E8F5C2A-1B3D-4C5E-8F70-123456789ABC",
            "{0e8f5c2a-1b3d-4c5e-8f70-123456789abc}",
            "{0E8F5C2A-1B3D-4C5E-8F70-123456789ABC}",
            "0e8f5c2a1b3d4c5e8f70123456789abc",
            "urn:uuid:0e8f5c2a-1b3d-4c5e-8f70-123456789abc",
        ] {
            assert_eq!(ResourcePattern::parse(spelling).unwrap().as_str(), id, "{spelling}");
        }
        assert_eq!(ResourcePattern::parse("0E8F5C2A-*").unwrap().as_str(), "0e8f5c2a-*");
        assert_eq!(ResourcePattern::parse("team-*").unwrap().as_str(), "team-*", "other names keep their case");
        for bad in ["{0e8f5c2a}", "{team}", "{0e8f*", "a b", "a\u{0}", "x\n"] {
            assert!(ResourcePattern::parse(bad).is_err(), "{bad:?}");
        }
        let deny = doc(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"*","Resource":"*"}},
                {{"Effect":"Deny","Action":"IAM.User.DELETE","Resource":"{{{}}}"}}]}}"#,
            id.to_uppercase()
        ));
        let set = PermissionSet::from_documents([&deny]);
        assert_eq!(set.evaluate("iam.user.Delete", id), Decision::ExplicitDeny);
        assert_eq!(set.evaluate("iam.user.Read", id), Decision::Allow);
        let json = serde_json::to_value(deny.to_json()).unwrap();
        assert_eq!(json["Statement"][1]["Resource"], serde_json::json!([id]), "the stored document is canonical");
    }

    /// A document of exactly `len` packed characters (at least 60): one statement listing
    /// actions of up to 200 characters.
    fn packed_doc(len: usize) -> String {
        let frame = r#"{"Statement":[{"Effect":"Allow","Action":[]}]}"#.len();
        // Each action costs its length, two quotes and a comma (the first has no comma).
        let room = len + 1 - frame;
        let count = room.div_ceil(203);
        let actions: Vec<String> = (0..count)
            .map(|i| {
                let cost = room / count + usize::from(i < room % count);
                format!("a.{}", "x".repeat(cost - 5))
            })
            .collect();
        let doc = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": actions}]}).to_string();
        assert_eq!(doc.len(), len);
        doc
    }

    fn written(json: &str, used_as: DocumentUse) -> Result<PolicyDocument, DomainError> {
        PolicyDocument::from_written_json(serde_json::from_str(json).unwrap(), used_as, "policy")
    }

    #[test]
    fn the_packed_size_is_the_compact_json_as_sent() {
        let spaced =
            "{ \"Version\" : \"v\",\n  \"Statement\": [ {\"Effect\":\"Allow\", \"Action\": [\"a.b\", \"c.d\"]} ] }";
        let compact: String =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(spaced).unwrap()).unwrap();
        assert_eq!(packed_chars(&serde_json::from_str::<PolicyDocumentJson>(spaced).unwrap()), compact.chars().count());
        assert_eq!(compact.chars().count(), 71, "{compact}");
        // Whitespace inside strings counts; an escape counts as its character; absent fields
        // are not counted as if present.
        let inside = r#"{"Statement":[{"Effect":"Allow","Action":"a"}],"Version":"a b"}"#;
        assert_eq!(packed_chars(&serde_json::from_str::<PolicyDocumentJson>(inside).unwrap()), inside.len());
        let escaped = r#"{"Version":"\u00e9","Statement":[{"Effect":"Allow","Action":"a"}]}"#;
        assert_eq!(packed_chars(&serde_json::from_str::<PolicyDocumentJson>(escaped).unwrap()), escaped.len() - 5);
        assert_eq!(packed_chars(&serde_json::from_str::<PolicyDocumentJson>(&packed_doc(2048)).unwrap()), 2048);
        // The JSON value the document was read from counts the same (STS counts that).
        for text in [spaced, inside, escaped] {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(packed_chars(&value), packed_chars(&serde_json::from_str::<PolicyDocumentJson>(text).unwrap()));
        }
        let percent = |n| DocumentUse::Session.percent_of_max(n);
        assert_eq!((percent(0), percent(1), percent(2048), percent(2049)), (0, 1, 100, 101));
    }

    #[test]
    fn written_documents_are_bounded_by_their_use() {
        assert!(written(&packed_doc(2048), DocumentUse::Session).is_ok());
        let err = written(&packed_doc(2049), DocumentUse::Session).unwrap_err();
        let DomainError::TooLarge(f) = err else { panic!("{err:?}") };
        assert_eq!(f.field, "policy");
        assert!(f.message.contains("2048") && f.message.contains("2049"), "{}", f.message);
        assert!(written(&packed_doc(6144), DocumentUse::Managed).is_ok());
        assert!(matches!(written(&packed_doc(6145), DocumentUse::Managed), Err(DomainError::TooLarge(_))));
        // Whitespace is free: a document padded with spaces past the size still fits.
        let spaced = packed_doc(2048).replace(',', " ,\n    ");
        assert!(spaced.len() > 2048 && written(&spaced, DocumentUse::Session).is_ok());
        // A stored document is not bounded, so one written before a bound still loads.
        assert!(PolicyDocument::from_json(serde_json::from_str(&packed_doc(20_000)).unwrap(), "d").is_ok());
    }

    #[test]
    fn a_written_statement_lists_a_bounded_number_of_actions_and_resources() {
        let statement = |actions: usize, resources: usize| {
            let list = |n: usize, item: &str| serde_json::to_string(&vec![item; n]).unwrap();
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"*"}},{{"Effect":"Allow","Action":{},"Resource":{}}}]}}"#,
                list(actions, "a"),
                list(resources, "r")
            )
        };
        assert!(written(&statement(200, 200), DocumentUse::Managed).is_ok());
        for (doc, field) in
            [(statement(201, 1), "policy.Statement[1].Action"), (statement(1, 201), "policy.Statement[1].Resource")]
        {
            let Err(DomainError::Invalid(f)) = written(&doc, DocumentUse::Managed) else { panic!("{doc}") };
            assert_eq!(f.field, field);
            assert!(f.message.contains("at most 200") && f.message.contains("201"), "{}", f.message);
            assert!(PolicyDocument::from_json(serde_json::from_str(&doc).unwrap(), "d").is_ok(), "stored: unbounded");
        }
    }

    #[test]
    fn document_round_trips_to_normalised_json() {
        let d = doc(r#"{"Version":"2012-10-20","Statement":[{"Effect":"Allow","Action":"a.b.C","Resource":"*"}]}"#);
        let json = serde_json::to_value(d.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Version":"2012-10-20","Statement":[{"Effect":"Allow","Action":["a.b.C"],"Resource":["*"]}]})
        );
    }
}

/// A stored policy: a named document within one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub id: crate::ids::PolicyId,
    pub org_id: crate::ids::OrgId,
    pub name: String,
    pub description: String,
    pub document: PolicyDocument,
    pub date_created: crate::Timestamp,
}

/// What a policy attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTarget {
    User(crate::ids::UserId),
    Group(crate::ids::GroupId),
    Role(crate::ids::RoleId),
}
