//! PostgreSQL going away and coming back: requests that need it get a JSON 503 quickly
//! (never a 500, never a hang), and the node recovers by itself.
//!
//! The outage is made with a TCP proxy between the node and PostgreSQL, so stopping "the
//! database" does not disturb the other tests sharing the real server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{Node, PgDb, free_port};

#[derive(Default)]
struct Proxy {
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(&self, port: u16, upstream: String) {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("proxy binds");
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every proxied connection: the database is "down". Returns
    /// once every socket is closed (each aborted task has been dropped with its sockets).
    async fn stop(&self, port: u16) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "the proxy still accepts connections");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_and_recovery_needs_no_restart() {
    let Some(db) = PgDb::create("outage::a_postgres_outage_answers_503_and_recovery_needs_no_restart").await else {
        return;
    };
    let real = db.url.clone();
    let hostport = real.split('@').nth(1).and_then(|r| r.split('/').next()).unwrap_or("127.0.0.1:5432").to_owned();
    let port = free_port();
    let proxy = Proxy::default();
    proxy.start(port, hostport.clone()).await;
    let through_proxy = real.replacen(&hostport, &format!("127.0.0.1:{port}"), 1);
    let node = Node::start(&through_proxy).await;
    let create = |i: u32| {
        let c = node.client.clone();
        async move {
            c.raw(Method::POST, "/v2/users", Some(&format!(r#"{{"email":"u{i}@example.com"}}"#)))
                .await
                .expect("an answer")
        }
    };
    assert_eq!(create(0).await.0, 201);

    proxy.stop(port).await;
    let started = Instant::now();
    let (status, body) = create(1).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // Bounded by the store's own limits (3 s to connect or wait for a connection, 5 s per
    // statement); anything longer is a hang, whatever the machine's load.
    assert!(took < Duration::from_secs(15), "the 503 took {took:?}");
    eprintln!("outage: 503 answered in {took:?}");
    let (status, _) = node.client.raw(Method::GET, "/v2/users", None).await.unwrap();
    assert_eq!(status, 503);
    let health = node.client.raw(Method::GET, "/healthz", None).await.unwrap();
    assert_eq!(health.0, 200, "the process itself stays up");

    proxy.start(port, hostport).await;
    let back = Instant::now();
    let mut i = 2;
    loop {
        let (status, _) = create(i).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503);
        // A poll of the node's own recovery (it reconnects with a backoff) inside one deadline.
        assert!(back.elapsed() < crate::DEADLINE, "no recovery after {:?}", crate::DEADLINE);
        tokio::time::sleep(Duration::from_millis(100)).await;
        i += 1;
    }
    eprintln!("outage: recovered {:?} after the database came back", back.elapsed());
    let users = node.client.list_users(&Default::default()).await.unwrap();
    assert!(users.users.iter().any(|u| u.email == "u0@example.com"), "nothing acknowledged was lost");
}
