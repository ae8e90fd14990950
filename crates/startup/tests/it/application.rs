//! `Application::build` binds every listener before it creates anything.

use std::net::TcpListener;

use tessera_startup::{Application, DatabaseUrl, Listen, Settings, StartupError};

fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.listen = "127.0.0.1:0".parse().unwrap();
    s.gateway.listen = Listen(Some("127.0.0.1:0".parse().unwrap()));
    s.database.url = Some(DatabaseUrl::Sqlite(dir.join("tessera.db")));
    s
}

async fn refused(s: Settings) -> StartupError {
    match Application::build(s).await {
        Ok(_) => panic!("a node started on a port in use"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_port_in_use_names_the_listener_and_its_flag_and_creates_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut s = settings(dir.path());
    s.server.listen = taken.local_addr().unwrap();
    let e = refused(s).await.to_string();
    assert!(e.contains("for the API (--listen, server.listen"), "{e}");
    assert!(e.contains(&taken.local_addr().unwrap().to_string()), "{e}");

    let mut s = settings(dir.path());
    s.gateway.listen = Listen(Some(taken.local_addr().unwrap()));
    let e = refused(s).await.to_string();
    assert!(e.contains("for the gateway (--gateway-listen, gateway.listen"), "{e}");

    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(created.is_empty(), "a refused start created {created:?}: no database, no rows, no key");
}

#[tokio::test]
async fn a_first_start_mints_a_key_and_serves_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let node = Application::build(settings(dir.path())).await.unwrap();
    let key = node.minted_key().expect("a fresh store gets a key").to_owned();
    assert!(key.starts_with("tessera_ak_"));
    assert_ne!(node.api_addr().port(), 0);
    assert_ne!(node.gateway_addr().unwrap().port(), 0);
    std::net::TcpStream::connect(node.api_addr()).expect("the API accepts connections");
    let stop = node.shutdown_handle();
    stop.shutdown();
    node.run_until_stopped().await.unwrap();

    // The second start finds the organization and mints nothing.
    let again = Application::build(settings(dir.path())).await.unwrap();
    assert_eq!(again.minted_key(), None);
}
