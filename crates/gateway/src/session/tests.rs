//! The plugin's decisions over a real app on SQLite with a controlled clock: opening,
//! refreshing (nothing, touch, renew), logout, remember, and who is refused.

use rand::SeedableRng;
use tessera_app::System;
use tessera_app::{App, BootstrapOutcome, BootstrapRequest, Caller, ManualClock, UserPatch};
use tessera_domain::gateway::{Plugin, merge_patch};
use tessera_domain::user::UserStatus;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tessera_domain::Timestamp;
use tessera_domain::ids::OrgId;
use tessera_domain::user::User;
use tessera_session_cookie::{BindValues, SessionData, SessionEntry};

use super::logout::{is_logout, leaves, logout, requested};
use super::open::{Found, Open, open};
use super::refresh::refresh;
use super::remember::restore;
use super::start::{key_ttl, start_session};
use super::upstream::strip_session_cookies;
use super::{Presented, unauthenticated};
use crate::Gateway;
use crate::plugin::{SessionPlugin, Unauthenticated};
use tessera_session_cookie::MAX_TTL;

const T0: u64 = 1_700_000_000;
const UA: &str = "UA-1";
const ADMIN_KEY: &str = "gateway-unit-admin-key-0123456789abcdef";

struct Harness {
    gw: Arc<Gateway>,
    clock: ManualClock,
    user: User,
    /// The administrator's API caller, for changes made through the app.
    caller: Caller,
    dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tessera_store_sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap());
    let clock = ManualClock::new(Timestamp(T0 as i64));
    let rng = Box::new(rand::rngs::StdRng::seed_from_u64(7));
    let app = Arc::new(App::new(store, Arc::new(clock.clone()), rng));
    let req = BootstrapRequest {
        organization_name: "t".into(),
        admin_email: "gia@example.com".into(),
        api_key: Some(ADMIN_KEY.into()),
    };
    let BootstrapOutcome::Created { organization, admin, .. } =
        app.bootstrap(tessera_app::System::BOOTSTRAP, req).await.unwrap()
    else {
        panic!("a fresh store")
    };
    let user = User::clone(
        &app.gateway_user(System::GATEWAY, organization, admin).await.unwrap().expect("an active administrator"),
    );
    let caller = app.authenticate(ADMIN_KEY, None).await.unwrap();
    let gw = Gateway::new(app).await.unwrap();
    Harness { gw, clock, user, caller, dir }
}

fn plugin(h: &Harness, config: Value) -> SessionPlugin {
    let mut cfg = json!({"secret": "a-test-secret", "cookie_secure": false});
    merge_patch(&mut cfg, config);
    let mut p: Plugin = serde_json::from_value(json!({"name": "session", "config": cfg})).unwrap();
    p.normalize().unwrap();
    p.id = Some(uuid::Uuid::from_u128(1));
    SessionPlugin::new(h.user.org_id, &p)
}

fn now(h: &Harness) -> u64 {
    h.gw.app.now().0 as u64
}

/// A browser's cookie jar: `Set-Cookie` lines applied in order (Max-Age=0 removes).
#[derive(Default, Clone)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn apply(&mut self, set_cookies: &[String]) {
        for c in set_cookies {
            let (name, rest) = c.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if c.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn request(&self, ua: &'static str) -> Presented<'_> {
        let cookies = self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Presented { bind: BindValues { ip: "127.0.0.1", scheme: "http", user_agent: ua }, cookies }
    }
}

async fn sign_in(h: &Harness, p: &SessionPlugin, others: SessionData) -> Jar {
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let signed = start_session(&h.gw, p, &h.user, &bind, others, now(h)).await.unwrap();
    assert_eq!(signed.identity.subject, "gia@example.com");
    let mut jar = Jar::default();
    jar.apply(&signed.cookies);
    jar
}

async fn open_as(h: &Harness, p: &SessionPlugin, jar: &Jar, ua: &'static str) -> Found {
    open(&h.gw, p, &jar.request(ua), now(h)).await.expect("the store answers")
}

fn valid(f: Found) -> Open {
    match f {
        Found::Valid(o) => *o,
        Found::OtherAudiences(_) => panic!("expected a valid session, found other audiences"),
        Found::None => panic!("expected a valid session, found none"),
    }
}

#[tokio::test]
async fn a_session_opens_for_its_audience_and_its_browser_only() {
    let h = harness().await;
    let p = plugin(&h, json!({"audience": "app-a", "bind": ["user-agent"]}));
    let jar = sign_in(&h, &p, vec![]).await;
    let o = valid(open_as(&h, &p, &jar, UA).await);
    assert_eq!(
        (o.identity.user_id.as_str(), o.identity.subject.as_str()),
        (&*h.user.id.to_string(), "gia@example.com")
    );
    assert!(matches!(open_as(&h, &p, &jar, "UA-2").await, Found::None), "bound to the User-Agent");
    let other = plugin(&h, json!({"audience": "app-b", "bind": ["user-agent"]}));
    match open_as(&h, &other, &jar, UA).await {
        Found::OtherAudiences(d) => {
            assert_eq!(d.iter().map(|e| e.audience.as_str()).collect::<Vec<_>>(), ["app-a"])
        }
        _ => panic!("another audience's plugin must see the entries to keep"),
    }
    let wrong_secret = plugin(&h, json!({"audience": "app-a", "secret": "another"}));
    assert!(matches!(open_as(&h, &wrong_secret, &jar, UA).await, Found::None), "another secret cannot open it");
}

#[tokio::test]
async fn refresh_does_nothing_then_touches_then_renews() {
    let h = harness().await;
    let p = plugin(&h, json!({"idling_timeout": 300, "rolling_timeout": 1000, "absolute_timeout": 5000}));
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let mut jar = sign_in(&h, &p, vec![]).await;
    let mut o = valid(open_as(&h, &p, &jar, UA).await);
    let first = o.header.storage_key();
    h.clock.advance(30);
    assert_eq!(refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap(), Some(vec![]), "fresh: nothing to send");
    h.clock.advance(31); // 61 s since the last save: touch
    let touched = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
    assert_eq!(touched.len(), 1, "a touch re-sends the first cookie only: {touched:?}");
    assert_eq!(o.header.storage_key(), first, "a touch keeps the session id");
    jar.apply(&touched);
    // Kept busy (a request every 250 s, each a touch) until 761 s > 3/4 of rolling (750).
    for _ in 0..2 {
        h.clock.advance(250);
        let mut o = valid(open_as(&h, &p, &jar, UA).await);
        let touched = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
        assert_eq!(o.header.storage_key(), first, "still a touch");
        jar.apply(&touched);
    }
    h.clock.advance(200);
    let mut o = valid(open_as(&h, &p, &jar, UA).await);
    let renewed = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
    assert!(renewed.iter().any(|c| c.starts_with("session=")), "{renewed:?}");
    assert_ne!(o.header.storage_key(), first, "a renewal gives a new session id");
    jar.apply(&renewed);
    assert_eq!(valid(open_as(&h, &p, &jar, UA).await).header.storage_key(), o.header.storage_key());
    h.clock.advance(301);
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "idle past idling_timeout");
}

#[tokio::test]
async fn logout_keeps_other_audiences_and_otherwise_expires_every_cookie() {
    let h = harness().await;
    let a = plugin(&h, json!({"audience": "app-a", "remember": true}));
    let b = plugin(&h, json!({"audience": "app-b", "remember": true}));
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let jar = sign_in(&h, &a, vec![]).await;
    let a_data = (*valid(open_as(&h, &a, &jar, UA).await).data).clone();
    let mut jar = {
        let mut j = jar.clone();
        j.apply(&start_session(&h.gw, &b, &h.user, &bind, a_data, now(&h)).await.unwrap().cookies);
        j
    };
    let o = valid(open_as(&h, &a, &jar, UA).await);
    assert_eq!(o.data.len(), 2, "one cookie, two audiences");
    let res = logout(&h.gw, &a, o, &bind, now(&h)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let set: Vec<String> =
        res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(set.iter().all(|c| !c.contains("Max-Age=0")), "re-sealed, nothing expired: {set:?}");
    jar.apply(&set);
    assert!(matches!(open_as(&h, &a, &jar, UA).await, Found::OtherAudiences(_)), "out of app-a");
    let o = valid(open_as(&h, &b, &jar, UA).await);
    let res = logout(&h.gw, &b, o, &bind, now(&h)).await;
    let set: Vec<String> =
        res.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(set.iter().any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("remember=;") && c.contains("Max-Age=0")), "{set:?}");
    jar.apply(&set);
    assert!(jar.0.is_empty(), "every cookie expired: {:?}", jar.0);
}

#[test]
fn logout_leaves_the_other_audiences_unless_the_record_is_shared() {
    let e = |aud: &str| SessionEntry::new(json!(["u"]), aud, "s");
    let data = vec![e("a"), e("b")];
    let left = leaves(&data, "a", false).unwrap();
    assert_eq!(left.iter().map(|e| e.audience.as_str()).collect::<Vec<_>>(), ["b"]);
    assert!(leaves(&data, "a", true).is_none(), "server storage ends the record for all");
    assert!(leaves(&data[..1], "a", false).is_none(), "nothing left: expire");
}

#[tokio::test]
async fn the_remember_cookie_brings_back_an_idled_session_and_a_disabled_user_loses_it() {
    let h = harness().await;
    let p = plugin(&h, json!({"remember": true, "idling_timeout": 60, "rolling_timeout": 3600}));
    let jar = sign_in(&h, &p, vec![]).await;
    assert!(jar.0.contains_key("remember"));
    h.clock.advance(120);
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "the session cookie idled out");
    let restored = restore(&h.gw, &p, &jar.request(UA), now(&h)).await.unwrap().unwrap();
    let (cookies, identity) = (restored.cookies, restored.identity);
    assert_eq!(identity.subject, "gia@example.com");
    assert!(cookies.iter().any(|c| c.starts_with("session=")) && cookies.iter().any(|c| c.starts_with("remember=")));
    let mut renewed = jar.clone();
    renewed.apply(&cookies);
    valid(open_as(&h, &p, &renewed, UA).await);
    let without = plugin(&h, json!({"remember": false, "idling_timeout": 60}));
    assert!(restore(&h.gw, &without, &jar.request(UA), now(&h)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_disabled_user_opens_neither_cookie() {
    let h = harness().await;
    let p = plugin(&h, json!({"remember": true, "idling_timeout": 60}));
    let jar = sign_in(&h, &p, vec![]).await;
    let disable = UserPatch { status: Some(UserStatus::Disabled), ..UserPatch::default() };
    h.gw.app.update_user(&h.caller, h.user.id, disable).await.unwrap();
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "the session cookie is refused");
    assert!(restore(&h.gw, &p, &jar.request(UA), now(&h)).await.unwrap().is_none());
}

/// Drops a table behind the app's back: every read of it fails from then on.
fn break_table(h: &Harness, table: &str) {
    let c = rusqlite::Connection::open(h.dir.path().join("t.db")).unwrap();
    c.execute_batch(&format!("DROP TABLE {table}")).unwrap();
}

#[tokio::test]
async fn a_failing_store_is_an_error_answer_never_a_guess() {
    let h = harness().await;
    let p = plugin(&h, json!({}));
    let jar = sign_in(&h, &p, vec![]).await;
    valid(open_as(&h, &p, &jar, UA).await);
    // The change feed is lost, so nothing cached may be trusted: the user is read again.
    h.gw.app.cache().set_trusted(false);
    break_table(&h, "users");
    let res = open(&h.gw, &p, &jar.request(UA), now(&h)).await.err().expect("an error, not a session or a refusal");
    assert!(res.status().is_server_error(), "{}", res.status());
}

#[tokio::test]
async fn no_session_starts_without_its_groups() {
    let h = harness().await;
    let p = plugin(&h, json!({}));
    break_table(&h, "group_members");
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let res = start_session(&h.gw, &p, &h.user, &bind, vec![], now(&h)).await.err().expect("no session without groups");
    assert!(res.status().is_server_error(), "{}", res.status());
}

#[tokio::test]
async fn server_storage_keys_open_renew_and_end_with_logout() {
    let h = harness().await;
    let p = plugin(&h, json!({"storage": "server", "rolling_timeout": 100, "idling_timeout": 0, "stale_ttl": 10}));
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let old = sign_in(&h, &p, vec![]).await;
    assert_eq!(old.0["session"].len(), 110, "the cookie is the header only");
    h.clock.advance(80);
    let mut o = valid(open_as(&h, &p, &old, UA).await);
    assert!(o.server.is_some());
    let renewed = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
    let mut new = old.clone();
    new.apply(&renewed);
    valid(open_as(&h, &p, &old, UA).await); // within stale_ttl
    h.clock.advance(11);
    assert!(matches!(open_as(&h, &p, &old, UA).await, Found::None), "the old key went stale");
    let o = valid(open_as(&h, &p, &new, UA).await);
    assert_eq!(logout(&h.gw, &p, o, &bind, now(&h)).await.status(), StatusCode::OK);
    assert!(matches!(open_as(&h, &p, &new, UA).await, Found::None), "logout ended the record");
}

#[test]
fn server_keys_live_to_the_rolling_deadline_capped_by_the_absolute_one() {
    let mut p = SessionPlugin::new(
        OrgId(uuid::Uuid::nil()),
        &serde_json::from_value(json!({"name": "session", "config": {"secret": "s"}})).unwrap(),
    );
    p.timeouts = tessera_session_cookie::Timeouts { idling: 0.0, rolling: 3600.0, absolute: 86_400.0 };
    assert_eq!(key_ttl(&p, 1000, 1000), 3600);
    assert_eq!(key_ttl(&p, 86_000 + 1000, 1000), 400, "capped by the absolute deadline");
    assert_eq!(key_ttl(&p, 90_000, 1000), 1, "never zero");
    p.timeouts = tessera_session_cookie::Timeouts { idling: 0.0, rolling: 0.0, absolute: 0.0 };
    assert_eq!(key_ttl(&p, 0, 0), MAX_TTL);
}

fn parts(method: &str, uri: &str, accept: Option<&str>) -> axum::http::request::Parts {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = accept {
        b = b.header(header::ACCEPT, a);
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn requests_without_a_session_pass_redirect_or_are_rejected_as_configured() {
    let html = parts("GET", "/x", Some("text/html,application/xhtml+xml"));
    let api = parts("GET", "/x", Some("application/json"));
    let post = parts("POST", "/x", Some("text/html"));
    assert_eq!(unauthenticated(Unauthenticated::Pass, &api), Unauthenticated::Pass);
    assert_eq!(unauthenticated(Unauthenticated::Redirect, &html), Unauthenticated::Redirect);
    assert_eq!(unauthenticated(Unauthenticated::Redirect, &api), Unauthenticated::Reject, "programs get 401");
    assert_eq!(unauthenticated(Unauthenticated::Redirect, &post), Unauthenticated::Reject, "only GET is redirected");
    assert_eq!(unauthenticated(Unauthenticated::Reject, &html), Unauthenticated::Reject);
}

#[tokio::test]
async fn logout_is_asked_by_query_or_body_with_a_configured_method() {
    let h = harness().await;
    let p = plugin(&h, json!({"logout_methods": ["POST"], "read_body_for_logout": true}));
    let none = HeaderMap::new();
    assert!(is_logout(&p, &parts("POST", "/x?a=1&session_logout", None), &none, None));
    assert!(!is_logout(&p, &parts("DELETE", "/x?session_logout", None), &none, None), "not a logout method");
    assert!(!is_logout(&p, &parts("POST", "/x?session_logoutx=1", None), &none, None));
    assert!(is_logout(&p, &parts("POST", "/x", None), &none, Some(b"a=1&session_logout=1")));
    let json_ct: HeaderMap =
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))].into_iter().collect();
    assert!(is_logout(&p, &parts("POST", "/x", None), &json_ct, Some(br#"{"session_logout":true}"#)));
    assert!(!is_logout(&p, &parts("POST", "/x", None), &json_ct, Some(b"session_logout")));
    let (asked, body) = requested(&p, &parts("POST", "/x", None), &none, Body::from("keep=me")).await.unwrap();
    assert!(!asked);
    assert_eq!(axum::body::to_bytes(body, 100).await.unwrap(), "keep=me", "the body still goes upstream");
}

#[test]
fn the_session_cookies_never_reach_the_upstream() {
    let mut h = HeaderMap::new();
    h.append(header::COOKIE, HeaderValue::from_static("theme=dark; session=a; session2=b; remember=c"));
    h.append(header::COOKIE, HeaderValue::from_static("session10=x; sessionx=y"));
    let p = SessionPlugin::new(
        OrgId(uuid::Uuid::nil()),
        &serde_json::from_value(json!({"name": "session", "config": {"secret": "s"}})).unwrap(),
    );
    strip_session_cookies(&mut h, &p);
    assert_eq!(h[header::COOKIE], "theme=dark; session10=x; sessionx=y");
}

/// Seed 003's example values (`idling_timeout = 0.19`, `absolute_timeout = 3.79`,
/// `rolling_timeout = 8.85`, `stale_ttl = 7.29`, `remember_rolling_timeout = 6.15`) behave
/// as in Kong: lua-resty-session compares whole elapsed seconds with the number itself.
#[tokio::test]
async fn seed_003_fractional_timeouts_behave_as_in_kong() {
    let h = harness().await;
    let seed = json!({"idling_timeout": 0.19, "rolling_timeout": 8.85, "absolute_timeout": 3.79, "stale_ttl": 7.29,
        "remember_rolling_timeout": 6.15, "remember_absolute_timeout": 4.46});
    let p = plugin(&h, seed.clone());
    let jar = sign_in(&h, &p, vec![]).await;
    valid(open_as(&h, &p, &jar, UA).await); // 0 > 0.19 is false
    h.clock.advance(1);
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "0.19 s idle: gone after one second, not disabled");

    // Without the idle timeout, 3.79 absolute: valid at 3 s, gone at 4 s.
    let mut no_idle = seed.clone();
    no_idle["idling_timeout"] = json!(0);
    let p = plugin(&h, no_idle);
    let jar = sign_in(&h, &p, vec![]).await;
    h.clock.advance(3);
    let o = valid(open_as(&h, &p, &jar, UA).await);
    let rem = o.header.remaining(&p.timeouts, now(&h));
    assert_eq!(rem.absolute.map(tessera_session_cookie::lua_number).as_deref(), Some("0.79"), "as Lua writes it");
    h.clock.advance(1);
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "3.79 s absolute: gone at 4 s");

    // The remember cookie: Max-Age is `%d` of 6.15.
    let mut remember = seed.clone();
    remember["remember"] = json!(true);
    let p = plugin(&h, remember);
    let bind = BindValues { ip: "127.0.0.1", scheme: "http", user_agent: UA };
    let signed = start_session(&h.gw, &p, &h.user, &bind, vec![], now(&h)).await.unwrap();
    let cookie = signed.cookies.iter().find(|c| c.starts_with("remember=")).expect("a remember cookie");
    assert!(cookie.ends_with("; Max-Age=6"), "{cookie}");

    // Rolling 8.85: renewal once more than ceil(0.75 * 8.85) = 7 s passed.
    let p = plugin(&h, json!({"rolling_timeout": 8.85, "idling_timeout": 0, "absolute_timeout": 0}));
    let jar = sign_in(&h, &p, vec![]).await;
    h.clock.advance(7);
    let mut o = valid(open_as(&h, &p, &jar, UA).await);
    assert_eq!(refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap(), Some(vec![]), "7 > 7 is false");
    h.clock.advance(1);
    let mut o = valid(open_as(&h, &p, &jar, UA).await);
    let renewed = refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
    assert!(renewed.iter().any(|c| c.starts_with("session=")), "8 > 7: renewed");
    h.clock.advance(1);
    assert!(matches!(open_as(&h, &p, &jar, UA).await, Found::None), "9 > 8.85: the old cookie rolled out");

    // stale_ttl 7.29 with server storage: the old key opens 7 s after a renewal, not 8 s.
    let p = plugin(
        &h,
        json!({"storage": "server", "rolling_timeout": 100, "idling_timeout": 0,
        "absolute_timeout": 0, "stale_ttl": 7.29}),
    );
    let old = sign_in(&h, &p, vec![]).await;
    h.clock.advance(76);
    let mut o = valid(open_as(&h, &p, &old, UA).await);
    refresh(&h.gw, &p, &mut o, &bind, now(&h)).await.unwrap().unwrap();
    h.clock.advance(7);
    valid(open_as(&h, &p, &old, UA).await);
    h.clock.advance(1);
    assert!(matches!(open_as(&h, &p, &old, UA).await, Found::None), "7.29 s stale: gone at 8 s");
}
