//! Three `tessera` processes on one PostgreSQL database: a revocation made through one node
//! is honoured by the other two within a second.

use std::time::{Duration, Instant};

use crate::{Node, PgDb, assume_req, assume_setup, list_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_node_is_seen_by_the_others_within_a_second() {
    let Some(db) = PgDb::create().await else {
        eprintln!("TEST_POSTGRES_URL is not set: skipping the three-node test");
        return;
    };
    let a = Node::start(&db.url).await;
    let (b, c) = tokio::join!(Node::start(&db.url), Node::start(&db.url));
    let (user, role, as_user) = assume_setup(&a.client).await;
    let session = as_user.assume_role(&assume_req(&user, &role)).await.unwrap();
    let token = session.session_token.unwrap();
    let on: Vec<_> = [&a, &b, &c].iter().map(|n| n.client.with_token(token.clone())).collect();
    for client in &on {
        assert_eq!(list_status(client).await, 200, "the token works (and is cached) everywhere");
    }
    let revoked_at = Instant::now();
    a.client.revoke_assumed_role(&session.id).await.unwrap();
    for (name, client) in [("B", &on[1]), ("C", &on[2])] {
        loop {
            let code = list_status(client).await;
            if code == 401 {
                eprintln!(
                    "node {name} refused the revoked token {:?} after the revocation returned",
                    revoked_at.elapsed()
                );
                break;
            }
            assert_eq!(code, 200);
            assert!(revoked_at.elapsed() < Duration::from_secs(1), "node {name} still accepts the token after 1 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(list_status(&on[0]).await, 401);
}
