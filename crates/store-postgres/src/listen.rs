//! The change feed: one dedicated connection that `LISTEN`s and republishes notices as
//! [`StoreChange`]s, reconnecting with backoff when it drops.

use std::time::Duration;

use futures_util::StreamExt;
use tessera_domain::Timestamp;
use tessera_store::StoreChange;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::CHANNEL;

fn parse(payload: &str) -> Option<StoreChange> {
    match payload {
        "c" => Some(StoreChange::Credentials),
        "p" => Some(StoreChange::Permissions),
        "g" => Some(StoreChange::Gateway),
        other => {
            let rest = other.strip_prefix("e:")?;
            let (id, expires) = rest.rsplit_once(':')?;
            Some(StoreChange::SessionEnded { id: id.parse().ok()?, expires: Timestamp(expires.parse().ok()?) })
        }
    }
}

/// Runs until the task is aborted (when the store is dropped).
pub async fn run(cfg: tokio_postgres::Config, out: broadcast::Sender<StoreChange>) {
    let mut backoff = Duration::from_millis(100);
    let mut lost = false;
    loop {
        match cfg.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let driver = tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) => {
                                if tx.send(Some(n.payload().to_owned())).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = tx.send(None);
                });
                if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                    backoff = Duration::from_millis(100);
                    // Whatever happened while the feed was down was missed: caches restart empty.
                    let _ = out.send(StoreChange::FeedRestored);
                    if lost {
                        tracing::info!("change feed restored");
                    }
                    lost = false;
                    while let Some(Some(payload)) = rx.recv().await {
                        if let Some(change) = parse(&payload) {
                            let _ = out.send(change);
                        }
                    }
                }
                driver.abort();
                drop(client);
            }
            Err(e) => {
                if !lost {
                    tracing::warn!(error = %e, "cannot open the change feed");
                }
            }
        }
        if !lost {
            tracing::warn!("change feed lost; caches are off until it is back");
            let _ = out.send(StoreChange::FeedLost);
            lost = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(parse("c"), Some(StoreChange::Credentials));
        assert_eq!(parse("p"), Some(StoreChange::Permissions));
        let id = "3f2b9c1e-0000-4000-8000-000000000001";
        assert_eq!(
            parse(&format!("e:{id}:1700000000")),
            Some(StoreChange::SessionEnded { id: id.parse().unwrap(), expires: Timestamp(1_700_000_000) })
        );
        assert_eq!(parse("e:nope"), None);
        assert_eq!(parse("zzz"), None);
    }
}
