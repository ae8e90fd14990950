//! The change feed: one dedicated connection that `LISTEN`s and republishes notices as
//! [`StoreChange`]s, reconnecting with backoff when it drops.
//!
//! Its lag is measured by a heartbeat: every few seconds the node `NOTIFY`s
//! `h:<node>:<unix-ms>` on the same channel from a pooled connection, as a change would be,
//! and times how long its own notice takes to come back (on this node's monotonic clock, so
//! no clock skew between nodes enters). Other nodes,
//! old ones included, ignore payloads they do not know, so the heartbeat changes nothing for
//! them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tessera_domain::Timestamp;
use tessera_store::StoreChange;
use tessera_store_sql::metrics::{Histogram, render_feed};
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::CHANNEL;

/// How often the feed sends itself a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The feed's health, written by [`run`] and rendered on the metrics listener.
#[derive(Default)]
pub struct FeedMetrics {
    up: AtomicBool,
    losses: AtomicU64,
    /// Whether `lag_nanos` holds a measurement yet.
    measured: AtomicBool,
    /// The last heartbeat's round trip, or the age of one not back after an interval.
    lag_nanos: AtomicU64,
    round_trips: Histogram,
}

impl FeedMetrics {
    fn lag(&self, lag: Duration) {
        self.lag_nanos.store(lag.as_nanos() as u64, Relaxed);
        self.measured.store(true, Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        let up = self.up.load(Relaxed);
        render_feed(out, up, self.losses.load(Relaxed));
        if up && self.measured.load(Relaxed) {
            let _ = writeln!(
                out,
                "# HELP tessera_change_feed_lag_seconds Round trip of this node's last heartbeat through the change feed (or the age of one not back yet).\n\
                 # TYPE tessera_change_feed_lag_seconds gauge\ntessera_change_feed_lag_seconds {}",
                self.lag_nanos.load(Relaxed) as f64 / 1e9
            );
        }
        out.push_str(
            "# HELP tessera_change_feed_heartbeat_seconds Round trips of this node's heartbeats through the change feed.\n\
             # TYPE tessera_change_feed_heartbeat_seconds histogram\n",
        );
        self.round_trips.render(out, "tessera_change_feed_heartbeat_seconds", "");
    }
}

/// The time sent in this node's own heartbeat `payload`; None for any other payload
/// (another node's heartbeat included).
fn own_heartbeat(payload: &str, node: &str) -> Option<u64> {
    let (id, ms) = payload.strip_prefix("h:")?.split_once(':')?;
    if id == node { ms.parse().ok() } else { None }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

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
pub async fn run(
    cfg: tokio_postgres::Config,
    pool: deadpool_postgres::Pool,
    out: broadcast::Sender<StoreChange>,
    feed: std::sync::Arc<FeedMetrics>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut lost = false;
    // Random per store, so each node recognises its own heartbeats among everyone's.
    let node = format!("{:016x}", rand::random::<u64>());
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
                    feed.up.store(true, Relaxed);
                    follow(&pool, &mut rx, &out, &feed, &node).await;
                    feed.up.store(false, Relaxed);
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
            feed.losses.fetch_add(1, Relaxed);
            tracing::warn!("change feed lost; caches are off until it is back");
            let _ = out.send(StoreChange::FeedLost);
            lost = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Republishes notices and sends heartbeats until the connection fails.
async fn follow(
    pool: &deadpool_postgres::Pool,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
    out: &broadcast::Sender<StoreChange>,
    feed: &FeedMetrics,
    node: &str,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The oldest heartbeat not back yet: its time in the payload and when it left.
    let mut pending: Option<(u64, Instant)> = None;
    // The heartbeat being sent: it may wait for a pooled connection, and notices must keep
    // flowing meanwhile.
    let mut sending = Sending(None);
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(Some(payload)) = msg else { return };
                if let Some(ms) = own_heartbeat(&payload, node) {
                    if let Some((sent, at)) = pending && sent == ms {
                        let rtt = at.elapsed();
                        feed.round_trips.observe(rtt.as_nanos() as u64);
                        feed.lag(rtt);
                        pending = None;
                    }
                } else if let Some(change) = parse(&payload) {
                    let _ = out.send(change);
                }
            }
            _ = tick.tick() => {
                // A heartbeat not back within an interval: the lag is at least its age.
                if let Some((_, at)) = pending {
                    feed.lag(at.elapsed());
                }
                if sending.0.as_ref().is_some_and(|s| !s.is_finished()) {
                    continue;
                }
                let ms = unix_ms();
                pending.get_or_insert((ms, Instant::now()));
                let (pool, payload) = (pool.clone(), format!("h:{node}:{ms}"));
                sending.0 = Some(tokio::spawn(async move {
                    if let Ok(c) = pool.get().await {
                        let _ = c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await;
                    }
                }));
            }
        }
    }
}

/// The heartbeat being sent, stopped with the feed (a lost connection, or the store dropped).
struct Sending(Option<tokio::task::JoinHandle<()>>);

impl Drop for Sending {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            s.abort();
        }
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

    #[test]
    fn heartbeats_are_no_changes() {
        // Old and new nodes alike turn no heartbeat into a change (which would flush caches).
        assert_eq!(parse("h:00000000deadbeef:1700000000000"), None);
        assert_eq!(parse("h:"), None);
        assert_eq!(own_heartbeat("h:00000000deadbeef:1700000000000", "00000000deadbeef"), Some(1_700_000_000_000));
        assert_eq!(own_heartbeat("h:00000000deadbeef:1700000000000", "0000000000000001"), None);
        assert_eq!(own_heartbeat("c", "00000000deadbeef"), None);
    }
}
