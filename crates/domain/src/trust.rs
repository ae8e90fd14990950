//! Role trusts: who may assume a role, and under which conditions.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::FieldError;
use crate::ids::{GroupId, OidcIssuerId, OrgId, RoleId, TrustId, UserId};
use crate::oidc::OidcClaims;
use crate::time::Timestamp;

/// Exactly one principal per trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustPrincipal {
    User(UserId),
    Group(GroupId),
    /// Workloads whose tokens this issuer signs, narrowed by the trust's `oidc_claims`.
    OidcIssuer(OidcIssuerId),
}

/// A window of UTC hours: `start` inclusive, `end` exclusive; wraps past midnight when
/// `start > end` (22 → 6 is the night shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourWindow {
    pub start: u8,
    pub end: u8,
}

impl HourWindow {
    pub fn new(start: i64, end: i64) -> Result<Self, FieldError> {
        if !(0..=23).contains(&start) {
            return Err(FieldError::new(
                "conditions.time_of_day.start",
                format!("must be an hour from 0 to 23, found {start}"),
            ));
        }
        if !(0..=24).contains(&end) {
            return Err(FieldError::new(
                "conditions.time_of_day.end",
                format!("must be an hour from 0 to 24, found {end}"),
            ));
        }
        if start == end {
            return Err(FieldError::new(
                "conditions.time_of_day",
                "start and end must differ; omit time_of_day to allow every hour",
            ));
        }
        Ok(Self { start: start as u8, end: end as u8 })
    }

    pub fn contains_hour(self, hour: u8) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        }
    }
}

/// A fixed offset from UTC, named as it was given ("UTC", "+02:00").
///
/// Vultr's `time_of_day.timezone` names a zone; this domain carries no timezone database
/// (no I/O, and a bundled one goes stale), so only UTC and fixed offsets are accepted, and a
/// zone name is refused with a message that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedZone {
    pub offset_secs: i32,
    pub name: String,
}

impl FixedZone {
    pub fn utc() -> FixedZone {
        FixedZone { offset_secs: 0, name: "UTC".into() }
    }

    pub fn parse(s: &str) -> Result<FixedZone, FieldError> {
        const FIELD: &str = "conditions.time_of_day.timezone";
        let t = s.trim();
        if ["utc", "z", "gmt", "etc/utc", "etc/gmt", "utc+00:00", "+00:00", "-00:00"]
            .contains(&t.to_ascii_lowercase().as_str())
        {
            return Ok(FixedZone::utc());
        }
        let offset = t.strip_prefix("UTC").or_else(|| t.strip_prefix("utc")).unwrap_or(t);
        let (sign, rest) = match offset.as_bytes().first() {
            Some(b'+') => (1, &offset[1..]),
            Some(b'-') => (-1, &offset[1..]),
            _ => {
                return Err(FieldError::new(
                    FIELD,
                    format!(
                        "timezone '{s}' cannot be resolved: this server knows UTC and fixed offsets only \
                         (e.g. \"UTC\", \"+02:00\", \"-05:30\"), no timezone database"
                    ),
                ));
            }
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let (Ok(h), Ok(m)) = (h.parse::<i32>(), m.parse::<i32>()) else {
            return Err(FieldError::new(FIELD, format!("timezone '{s}' is not an offset such as +02:00")));
        };
        if !(0..=14).contains(&h) || !(0..60).contains(&m) || rest.len() > 5 {
            return Err(FieldError::new(FIELD, format!("timezone '{s}' is out of range (-14:00 to +14:00)")));
        }
        let offset_secs = sign * (h * 3_600 + m * 60);
        let name = if offset_secs == 0 {
            "UTC".into()
        } else {
            format!("{}{:02}:{:02}", if sign < 0 { '-' } else { '+' }, h, m)
        };
        Ok(FixedZone { offset_secs, name })
    }
}

pub const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// When a trust may be used: hours of the day (`start` inclusive, `end` exclusive) in a
/// zone, on some days of the week. Vultr shows both `{start, end}` (UTC hours) and
/// `{timezone, days_of_week}`; one object holds either or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOfDay {
    /// All day (0–24) when only days were given.
    pub hours: HourWindow,
    pub zone: FixedZone,
    /// Bit `i` is `WEEKDAYS[i]`; `None` means every day.
    pub days: Option<u8>,
}

impl TimeOfDay {
    /// UTC hours only: the original form.
    pub fn utc_hours(hours: HourWindow) -> TimeOfDay {
        TimeOfDay { hours, zone: FixedZone::utc(), days: None }
    }

    pub fn new(
        start: Option<i64>,
        end: Option<i64>,
        timezone: Option<&str>,
        days_of_week: Option<&[String]>,
    ) -> Result<TimeOfDay, FieldError> {
        let hours = match (start, end) {
            (None, None) => HourWindow { start: 0, end: 24 },
            (s, e) => HourWindow::new(s.unwrap_or(0), e.unwrap_or(24))?,
        };
        let zone = timezone.map(FixedZone::parse).transpose()?.unwrap_or_else(FixedZone::utc);
        let days = match days_of_week {
            None => None,
            Some([]) => {
                return Err(FieldError::new(
                    "conditions.time_of_day.days_of_week",
                    "name at least one day; omit days_of_week to allow every day",
                ));
            }
            Some(names) => {
                let mut mask = 0u8;
                for (i, d) in names.iter().enumerate() {
                    let lower = d.trim().to_ascii_lowercase();
                    let Some(at) =
                        WEEKDAYS.iter().position(|w| *w == lower || (lower.len() >= 3 && w.starts_with(&lower)))
                    else {
                        return Err(FieldError::new(
                            format!("conditions.time_of_day.days_of_week[{i}]"),
                            format!("'{d}' is not a day of the week (monday … sunday)"),
                        ));
                    };
                    mask |= 1 << at;
                }
                Some(mask)
            }
        };
        Ok(TimeOfDay { hours, zone, days })
    }

    pub fn day_names(&self) -> Option<Vec<&'static str>> {
        self.days.map(|m| (0..7).filter(|i| m & (1 << i) != 0).map(|i| WEEKDAYS[i]).collect())
    }

    /// Whether `now` falls in the window; the refusal says where `now` fell.
    pub fn check(&self, now: Timestamp) -> Result<(), String> {
        let local = now.0 + i64::from(self.zone.offset_secs);
        let hour = (local.rem_euclid(86_400) / 3_600) as u8;
        // 1970-01-01 was a Thursday (index 3).
        let day = ((local.div_euclid(86_400) + 3).rem_euclid(7)) as usize;
        if let Some(mask) = self.days
            && mask & (1 << day) == 0
        {
            return Err(format!(
                "{} ({}) is not one of [{}]",
                WEEKDAYS[day],
                self.zone.name,
                self.day_names().unwrap_or_default().join(", ")
            ));
        }
        if !self.hours.contains_hour(hour) {
            let z = &self.zone.name;
            return Err(format!("hour {hour} {z} is outside {}:00-{}:00 {z}", self.hours.start, self.hours.end));
        }
        Ok(())
    }
}

/// An IP allow-list entry: a single address or a CIDR block.
pub fn parse_ip_range(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("'{s}' is neither an IP address nor a CIDR block"))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConditions {
    /// Empty means any address.
    pub ip_ranges: Vec<IpNet>,
    pub time_of_day: Option<TimeOfDay>,
    /// Conditions on the token's claims; only for a trust to an OIDC issuer, which must pin
    /// `aud` and `sub` ([`OidcClaims::require_audience_and_subject`]).
    pub oidc_claims: OidcClaims,
}

impl TrustConditions {
    /// The rules that tie conditions to the principal: a trust to an OIDC issuer must pin
    /// `aud` and `sub`; claim conditions mean nothing for a user or a group.
    pub fn check_for(&self, principal: &TrustPrincipal) -> Result<(), FieldError> {
        const FIELD: &str = "conditions.oidc_claims";
        match principal {
            TrustPrincipal::OidcIssuer(_) => self.oidc_claims.require_audience_and_subject(FIELD),
            _ if !self.oidc_claims.is_empty() => {
                Err(FieldError::new(FIELD, "claim conditions apply only to a trust with trusted_oidc_issuer_id"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTrust {
    pub id: TrustId,
    pub org_id: OrgId,
    pub role_id: RoleId,
    pub trust_type: String,
    pub principal: TrustPrincipal,
    pub conditions: TrustConditions,
    pub valid_until: Option<Timestamp>,
    pub date_created: Timestamp,
}

/// Who asks to assume a role.
#[derive(Debug, Clone, Copy)]
pub enum Assumer<'a> {
    /// A user, directly or through its groups.
    User { id: UserId, groups: &'a [GroupId] },
    /// A workload, by a verified token of an issuer.
    Workload { issuer: OidcIssuerId, claims: &'a serde_json::Map<String, serde_json::Value> },
}

/// Who is asking to assume, and from where.
#[derive(Debug, Clone)]
pub struct AssumeContext<'a> {
    pub who: Assumer<'a>,
    /// The address the conditions check: the `ip_address` the session will be bound to when
    /// one is given (so the token can only ever be used from inside the allowed range),
    /// otherwise the address the request came from.
    pub ip: Option<IpAddr>,
    pub now: Timestamp,
}

/// Why no trust let the caller in; the message goes to the caller in a 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRefusal(pub String);

impl RoleTrust {
    fn names(&self, ctx: &AssumeContext<'_>) -> bool {
        match (self.principal, ctx.who) {
            (TrustPrincipal::User(u), Assumer::User { id, .. }) => u == id,
            (TrustPrincipal::Group(g), Assumer::User { groups, .. }) => groups.contains(&g),
            (TrustPrincipal::OidcIssuer(i), Assumer::Workload { issuer, .. }) => i == issuer,
            _ => false,
        }
    }

    /// Checks every condition; on success returns the names of those that were checked.
    fn check(&self, ctx: &AssumeContext<'_>) -> Result<Vec<String>, String> {
        let mut met = Vec::new();
        if let Some(until) = self.valid_until {
            if ctx.now >= until {
                return Err(format!("role trust {} expired at {}", self.id, until));
            }
            met.push("valid_until".to_owned());
        }
        if !self.conditions.ip_ranges.is_empty() {
            let Some(ip) = ctx.ip else {
                return Err(format!("role trust {} requires an ip_address condition but no address is known", self.id));
            };
            let ip = ip.to_canonical();
            if !self.conditions.ip_ranges.iter().any(|n| n.contains(&ip)) {
                let allowed: Vec<String> = self.conditions.ip_ranges.iter().map(|n| n.to_string()).collect();
                return Err(format!(
                    "role trust {} condition ip_address not met: {ip} is not in [{}]",
                    self.id,
                    allowed.join(", ")
                ));
            }
            met.push("ip_address".to_owned());
        }
        if let Some(window) = &self.conditions.time_of_day {
            window
                .check(ctx.now)
                .map_err(|why| format!("role trust {} condition time_of_day not met: {why}", self.id))?;
            met.push("time_of_day".to_owned());
        }
        if let Assumer::Workload { claims, .. } = ctx.who
            && !self.conditions.oidc_claims.is_empty()
        {
            self.conditions.oidc_claims.check(claims).map_err(|why| format!("role trust {} {why}", self.id))?;
            met.push("oidc_claims".to_owned());
        }
        Ok(met)
    }
}

/// Finds a trust of the role that names the caller and whose conditions all hold.
/// Returns the conditions it met, or a refusal that says which trust or condition failed.
pub fn evaluate_trusts(
    trusts: &[RoleTrust],
    role_id: RoleId,
    ctx: &AssumeContext<'_>,
) -> Result<Vec<String>, TrustRefusal> {
    let mut failures = Vec::new();
    for trust in trusts.iter().filter(|t| t.role_id == role_id && t.names(ctx)) {
        match trust.check(ctx) {
            Ok(met) => return Ok(met),
            Err(why) => failures.push(why),
        }
    }
    if failures.is_empty() {
        Err(TrustRefusal(match ctx.who {
            Assumer::User { id, .. } => format!("No trust relationship exists between this role and user {id}"),
            Assumer::Workload { .. } => "No trust relationship exists between this role and OIDC issuer".to_owned(),
        }))
    } else {
        Err(TrustRefusal(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(principal: TrustPrincipal, conditions: TrustConditions, valid_until: Option<i64>) -> RoleTrust {
        RoleTrust {
            id: TrustId::from_random([9; 16]),
            org_id: OrgId::from_random([1; 16]),
            role_id: RoleId::from_random([2; 16]),
            trust_type: "TemporaryAssumption".into(),
            principal,
            conditions,
            valid_until: valid_until.map(Timestamp),
            date_created: Timestamp(0),
        }
    }

    const USER: UserId = UserId(uuid::Uuid::from_bytes([3; 16]));
    const GROUP: GroupId = GroupId(uuid::Uuid::from_bytes([4; 16]));

    fn ctx<'a>(groups: &'a [GroupId], ip: Option<&str>, now: i64) -> AssumeContext<'a> {
        AssumeContext {
            who: Assumer::User { id: USER, groups },
            ip: ip.map(|s| s.parse().unwrap()),
            now: Timestamp(now),
        }
    }

    #[test]
    fn a_trust_must_name_the_user_directly_or_through_a_group() {
        let t = trust(TrustPrincipal::Group(GROUP), TrustConditions::default(), None);
        let role = t.role_id;
        let err = evaluate_trusts(std::slice::from_ref(&t), role, &ctx(&[], None, 0)).unwrap_err();
        assert!(err.0.contains("No trust relationship"), "{}", err.0);
        assert_eq!(evaluate_trusts(&[t], role, &ctx(&[GROUP], None, 0)), Ok(vec![]));
    }

    #[test]
    fn ip_condition_names_the_address_and_ranges() {
        let conditions = TrustConditions {
            ip_ranges: vec![parse_ip_range("10.0.0.0/8").unwrap(), parse_ip_range("192.168.1.7").unwrap()],
            time_of_day: None,
            oidc_claims: OidcClaims::default(),
        };
        let t = trust(TrustPrincipal::User(USER), conditions, None);
        let role = t.role_id;
        let trusts = [t];
        assert_eq!(evaluate_trusts(&trusts, role, &ctx(&[], Some("10.1.2.3"), 0)), Ok(vec!["ip_address".into()]));
        assert!(evaluate_trusts(&trusts, role, &ctx(&[], Some("192.168.1.7"), 0)).is_ok());
        assert!(evaluate_trusts(&trusts, role, &ctx(&[], Some("::ffff:10.9.9.9"), 0)).is_ok());
        let err = evaluate_trusts(&trusts, role, &ctx(&[], Some("11.0.0.1"), 0)).unwrap_err();
        assert!(err.0.contains("ip_address not met: 11.0.0.1 is not in [10.0.0.0/8, 192.168.1.7/32]"), "{}", err.0);
    }

    #[test]
    fn time_of_day_and_expiry() {
        let conditions = TrustConditions {
            ip_ranges: vec![],
            time_of_day: Some(TimeOfDay::utc_hours(HourWindow::new(9, 17).unwrap())),
            oidc_claims: OidcClaims::default(),
        };
        let t = trust(TrustPrincipal::User(USER), conditions, Some(86_400 * 10));
        let role = t.role_id;
        let trusts = [t];
        let at = |h: i64| 86_400 + h * 3_600;
        assert_eq!(
            evaluate_trusts(&trusts, role, &ctx(&[], None, at(9))),
            Ok(vec!["valid_until".into(), "time_of_day".into()])
        );
        assert!(evaluate_trusts(&trusts, role, &ctx(&[], None, at(16) + 3_599)).is_ok());
        let err = evaluate_trusts(&trusts, role, &ctx(&[], None, at(17))).unwrap_err();
        assert!(err.0.contains("time_of_day not met: hour 17 UTC"), "{}", err.0);
        let err = evaluate_trusts(&trusts, role, &ctx(&[], None, 86_400 * 10 + at(10))).unwrap_err();
        assert!(err.0.contains("expired"), "{}", err.0);
    }

    #[test]
    fn hour_windows_wrap_midnight_and_validate() {
        let night = HourWindow::new(22, 6).unwrap();
        assert!(night.contains_hour(23) && night.contains_hour(0) && night.contains_hour(5));
        assert!(!night.contains_hour(6) && !night.contains_hour(12));
        assert!(HourWindow::new(0, 24).unwrap().contains_hour(23));
        assert!(HourWindow::new(24, 3).is_err());
        assert!(HourWindow::new(3, 25).is_err());
        assert!(HourWindow::new(5, 5).is_err());
    }

    #[test]
    fn ip_ranges_parse_addresses_and_blocks() {
        assert_eq!(parse_ip_range("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_ip_range("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert!(parse_ip_range("10.0.0.300").is_err());
        assert!(parse_ip_range("").is_err());
    }

    #[test]
    fn a_workload_needs_a_trust_to_its_issuer_whose_claims_hold() {
        use serde_json::json;
        let issuer = OidcIssuerId::from_random([7; 16]);
        let conditions = TrustConditions {
            oidc_claims: OidcClaims::parse(&json!({"aud": "tessera", "sub": "repo:acme/*"}), "c").unwrap(),
            ..Default::default()
        };
        conditions.check_for(&TrustPrincipal::OidcIssuer(issuer)).unwrap();
        assert!(conditions.check_for(&TrustPrincipal::User(USER)).is_err(), "claims mean nothing for a user");
        let bare = TrustConditions::default().check_for(&TrustPrincipal::OidcIssuer(issuer)).unwrap_err();
        assert_eq!(bare.field, "conditions.oidc_claims.aud");
        let t = trust(TrustPrincipal::OidcIssuer(issuer), conditions, None);
        let role = t.role_id;
        let claims = |sub: &str| json!({"aud": "tessera", "sub": sub}).as_object().unwrap().clone();
        let at = |issuer, c: &serde_json::Map<String, serde_json::Value>| {
            let ctx = AssumeContext { who: Assumer::Workload { issuer, claims: c }, ip: None, now: Timestamp(0) };
            evaluate_trusts(std::slice::from_ref(&t), role, &ctx)
        };
        assert_eq!(at(issuer, &claims("repo:acme/api")), Ok(vec!["oidc_claims".into()]));
        let why = at(issuer, &claims("repo:evil/api")).unwrap_err().0;
        assert!(why.contains("oidc_claims.sub not met"), "{why}");
        let other = OidcIssuerId::from_random([8; 16]);
        let why = at(other, &claims("repo:acme/api")).unwrap_err().0;
        assert_eq!(why, "No trust relationship exists between this role and OIDC issuer");
    }

    #[test]
    fn time_of_day_in_a_fixed_zone_on_named_days() {
        let days = ["monday".to_owned(), "Sat".to_owned()];
        let w = TimeOfDay::new(Some(9), Some(17), Some("+02:00"), Some(&days)).unwrap();
        // 2030-01-05 was a Saturday; 07:30 UTC is 09:30 at +02:00.
        let sat = Timestamp::parse_rfc3339("2030-01-05T07:30:00Z").unwrap();
        assert_eq!(w.check(sat), Ok(()));
        assert_eq!(w.check(sat.plus_secs(-3_600)), Err("hour 8 +02:00 is outside 9:00-17:00 +02:00".into()));
        let sun = sat.plus_secs(86_400);
        assert_eq!(w.check(sun), Err("sunday (+02:00) is not one of [monday, saturday]".into()));
        // Days alone: all day.
        let weekdays: Vec<String> = WEEKDAYS[..5].iter().map(|d| d.to_string()).collect();
        let office = TimeOfDay::new(None, None, Some("utc"), Some(&weekdays)).unwrap();
        assert!(office.check(sat.plus_secs(-86_400)).is_ok() && office.check(sat).is_err());
        assert_eq!(FixedZone::parse("-05:30").unwrap().offset_secs, -19_800);
        let e = FixedZone::parse("Europe/Paris").unwrap_err();
        assert!(e.message.contains("fixed offsets only"), "{}", e.message);
        assert!(FixedZone::parse("+15:00").is_err());
        assert!(TimeOfDay::new(None, None, None, Some(&[])).is_err());
        assert!(TimeOfDay::new(None, None, None, Some(&["caturday".into()])).is_err());
    }
}
