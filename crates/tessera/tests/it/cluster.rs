//! Three `tessera` processes on one PostgreSQL database: a revocation made through one node
//! is honoured by the other two as soon as the change feed's notice reaches them.

use std::time::Instant;

use tokio_postgres::AsyncMessage;

use crate::{DEADLINE, Node, PgDb, assume_req, assume_setup, list_status};

/// The notices every node follows, as a listener of our own on the same channel sees them.
async fn listen(url: &str) -> (tokio_postgres::Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (client, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = msg
                && tx.send(n.payload().to_owned()).is_err()
            {
                return;
            }
        }
    });
    client.batch_execute("LISTEN tessera_changes").await.expect("LISTEN");
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_postgres_nodes_honour_a_revocation_made_through_one() {
    let Some(db) = PgDb::create("cluster::three_postgres_nodes_honour_a_revocation_made_through_one").await else {
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
    let (_listener, mut notices) = listen(&db.url).await;
    let revoked_at = Instant::now();
    a.client.revoke_assumed_role(&session.id).await.unwrap();
    assert_eq!(list_status(&on[0]).await, 401, "the node that revoked refuses at once");
    // The notice B and C follow; their cached credentials live for minutes, so nothing but
    // this notice can make them refuse within the deadline.
    let ended = format!("e:{}:", session.id);
    loop {
        match tokio::time::timeout_at((revoked_at + DEADLINE).into(), notices.recv()).await {
            Ok(Some(p)) if p.starts_with(&ended) => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("our own LISTEN connection closed"),
            Err(_) => panic!("no notice of the revocation within {DEADLINE:?}"),
        }
    }
    eprintln!("the revocation's notice was delivered {:?} after the revocation returned", revoked_at.elapsed());
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
            assert!(revoked_at.elapsed() < DEADLINE, "node {name} still accepts the token after {DEADLINE:?}");
            tokio::task::yield_now().await;
        }
    }
}
