//! `kill -9` under concurrent assume load, then a restart: every session the server
//! acknowledged with a 201 is still there and its token still works.

use std::sync::{Arc, Mutex};

use tessera_client::Client;

use crate::{DEADLINE, Node, PgDb, assume_req, assume_setup, list_status};

/// Acknowledged sessions to wait for before the kill: the load is well under way, however
/// slow the machine.
const ACKED_BEFORE_KILL: usize = 200;

async fn crash_and_check(database: &str) {
    let mut node = Node::start(database).await;
    let (user, role, as_user) = assume_setup(&node.client).await;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let count = Arc::new(count);
    let mut workers = vec![];
    for _ in 0..16 {
        let (c, acked, count, req) =
            (as_user.clone(), Arc::clone(&acked), Arc::clone(&count), assume_req(&user, &role));
        workers.push(tokio::spawn(async move {
            // Until the server dies under us.
            while let Ok(s) = c.assume_role(&req).await {
                let n = {
                    let mut acked = acked.lock().unwrap();
                    acked.push((s.id, s.session_token.unwrap()));
                    acked.len()
                };
                count.send_replace(n);
            }
        }));
    }
    // Kill while the writes are in full flow: after this many acknowledgements, not after a
    // guess at how long they take.
    tokio::time::timeout(DEADLINE, counted.wait_for(|n| *n >= ACKED_BEFORE_KILL))
        .await
        .unwrap_or_else(|_| panic!("fewer than {ACKED_BEFORE_KILL} sessions acknowledged within {DEADLINE:?}"))
        .expect("the workers are running");
    node.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL, "the load produced only {} sessions", acked.len());

    let node = Node::start(database).await;
    let admin: &Client = &node.client;
    for (id, token) in &acked {
        let s = admin.get_assumed_role(id).await.unwrap_or_else(|e| panic!("acknowledged session {id} lost: {e}"));
        assert_eq!(s.status, "Active");
        assert_eq!(list_status(&admin.with_token(token.clone())).await, 200, "token of {id} no longer works");
    }
    eprintln!(
        "{}: all {} acknowledged sessions survived kill -9",
        database.split(':').next().unwrap_or(""),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_session() {
    let dir = tempfile::tempdir().unwrap();
    crash_and_check(&format!("sqlite://{}", dir.path().join("tessera.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_session() {
    let Some(db) = PgDb::create("crash::postgres_loses_no_acknowledged_session").await else { return };
    crash_and_check(&db.url).await;
}
