//! "Who is this?" answered from memory: whoami (`GET /v2/sessions/current`) and introspection
//! keep answering while the store cannot read sessions at all, and a session ended through
//! the API is refused at once even though its record is cached.

use reqwest::StatusCode;
use tessera_api_types as wire;
use tessera_testkit::{Backend, TestApp, allow, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

async fn signed_in_user(t: &TestApp) -> (wire::SignInResponse, wire::SignInResponse) {
    let user = t
        .admin
        .create_user(&wire::UserCreate {
            email: "lee@example.com".into(),
            first_name: "Lee".into(),
            last_name: String::new(),
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    let p = t
        .admin
        .create_policy(&wire::PolicyInput {
            name: "p".into(),
            description: String::new(),
            policy_document: allow(&["iam.user.List"]),
        })
        .await
        .unwrap();
    t.admin.attach_policy_to_user(&p.id, &user.id).await.unwrap();
    let sign_in = || async {
        t.anonymous()
            .sign_in(&wire::SignInRequest {
                email: "lee@example.com".into(),
                password: PASSWORD.into(),
                organization_id: None,
            })
            .await
            .unwrap()
    };
    (sign_in().await, sign_in().await)
}

/// Renames the sessions table behind the server's back (`away`) or back: while it is away,
/// every read of a session fails in the store itself.
async fn sessions_table(t: &TestApp, backend: &Backend, away: bool) {
    let (from, to) = if away { ("sessions", "sessions_away") } else { ("sessions_away", "sessions") };
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match backend {
        Backend::Sqlite => {
            let c = rusqlite::Connection::open(t.db_path.as_ref().unwrap()).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.execute_batch(&sql).unwrap();
        }
        Backend::Postgres(admin_url) => {
            let (_, database) = t.postgres_server().await.unwrap();
            let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
            let base = &base[..base.rfind('/').filter(|i| *i > "postgres://".len()).unwrap_or(base.len())];
            let url =
                if query.is_empty() { format!("{base}/{database}") } else { format!("{base}/{database}?{query}") };
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&sql).await.unwrap();
        }
    }
}

async fn whoami_answers_from_memory_and_a_revoked_session_is_refused_at_once(backend: Backend) {
    let t = spawn_app(backend.clone()).await;
    let (kept, revoked) = signed_in_user(&t).await;
    let (me, other) = (t.client(&kept.token), t.client(&revoked.token));

    // The first ask reads the record; the answer is the record as an administrator reads it.
    let first = me.current_session().await.unwrap();
    assert_eq!(first, t.admin.get_session(&kept.session.moid).await.unwrap());
    assert_eq!((first.moid.as_str(), first.status.as_str()), (kept.session.moid.as_str(), "Active"));
    let introspected = t.admin.introspect(&kept.token).await.unwrap();
    assert!(introspected.active);

    // Cached, then ended through the API: refused on the very next ask.
    assert_eq!(other.current_session().await.unwrap().moid, revoked.session.moid);
    t.admin.terminate_session(&revoked.session.moid).await.unwrap();
    let refused = other.current_session().await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED), "{refused}");

    // The store can no longer read any session ...
    sessions_table(&t, &backend, true).await;
    let broken = t.admin.get_session(&kept.session.moid).await;
    assert!(broken.is_err(), "the store still reads sessions: {broken:?}");
    // ... yet "who am I?" and introspection answer exactly as before, from memory.
    for _ in 0..3 {
        assert_eq!(me.current_session().await.unwrap(), first);
        assert_eq!(t.admin.introspect(&kept.token).await.unwrap(), introspected);
    }
    // And the revoked session stays refused.
    assert_eq!(other.current_session().await.unwrap_err().status(), Some(StatusCode::UNAUTHORIZED));
    sessions_table(&t, &backend, false).await;
    assert_eq!(t.admin.get_session(&kept.session.moid).await.unwrap(), first);
}

tessera_testkit::both_backends!(whoami_answers_from_memory_and_a_revoked_session_is_refused_at_once);
