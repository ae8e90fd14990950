//! Writes that collided with a concurrent one, run again: the one place the PostgreSQL store
//! retries.
//!
//! PostgreSQL answers a deadlock (40P01) or a serialization failure (40001) by rolling the
//! losing transaction back whole; running the same transaction again from `BEGIN` usually
//! succeeds, since the other one has moved on by then. [`retrying`] does that for every write
//! the store makes — the transaction runner (`PgStore::transaction`), single statements that
//! are their own transaction, and the session writer's batches — at most [`ATTEMPTS`] times,
//! with a short random pause between attempts so two colliding writers do not collide again
//! in step. A write that collides every time is [`StoreError::Contended`]: nothing of it was
//! saved, and the caller may send it again.
//!
//! What runs again must be safe to run again: a whole transaction (or one statement outside
//! any), built from its inputs alone, with nothing kept from the attempt that failed. The
//! staged audit event obeys this by itself: a failed commit puts it back, the next takes it.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::Rng as _;
use tessera_store::{StoreError, StoreResult};

/// Attempts of one write, the first included.
pub(crate) const ATTEMPTS: u32 = 3;

/// How often writes ran again, and how often they gave up.
#[derive(Debug, Default)]
pub(crate) struct RetryMetrics {
    retried: AtomicU64,
    gave_up: AtomicU64,
}

impl RetryMetrics {
    /// `tessera_store_write_retries_total` in the text format.
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tessera_store_write_retries_total Writes that collided with a concurrent one (deadlock or serialization \
             failure), by what followed: run again, or given up after {ATTEMPTS} attempts (answered as contended).\n\
             # TYPE tessera_store_write_retries_total counter\n\
             tessera_store_write_retries_total{{result=\"retried\"}} {}\n\
             tessera_store_write_retries_total{{result=\"gave_up\"}} {}",
            self.retried.load(Relaxed),
            self.gave_up.load(Relaxed),
        );
    }
}

/// Runs `attempt` until it answers anything but [`StoreError::Contended`], at most
/// [`ATTEMPTS`] times; the last contended answer is returned as it is.
pub(crate) async fn retrying<T, F>(m: &RetryMetrics, mut attempt: impl FnMut() -> F) -> StoreResult<T>
where
    F: Future<Output = StoreResult<T>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(StoreError::Contended(why)) if n < ATTEMPTS => {
                m.retried.fetch_add(1, Relaxed);
                tracing::debug!(attempt = n, error = %why, "postgres: a write collided with a concurrent one; running it again");
                tokio::time::sleep(pause(n)).await;
                n += 1;
            }
            Err(e @ StoreError::Contended(_)) => {
                m.gave_up.fetch_add(1, Relaxed);
                tracing::warn!(attempts = n, error = %e, "postgres: a write collided with concurrent ones on every attempt");
                return Err(e);
            }
            r => return r,
        }
    }
}

/// The pause after failed attempt `n`: 1–4 ms after the first, 2–8 ms after the second. Long
/// enough for the transaction that won to commit, short enough to be invisible in a request;
/// random so the two losers of a three-way collision do not meet again at once. (Jitter is
/// the one randomness the store draws itself: no caller has a reason to choose it.)
fn pause(n: u32) -> Duration {
    let base = 1_000u64 << (n - 1).min(4);
    Duration::from_micros(rand::thread_rng().gen_range(base..=4 * base))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contended() -> StoreError {
        StoreError::Contended("deadlock detected".into())
    }

    #[tokio::test]
    async fn a_contended_write_runs_again_until_it_succeeds_or_the_attempts_run_out() {
        let m = RetryMetrics::default();
        let mut runs = 0;
        let r = retrying(&m, || {
            runs += 1;
            let fail = runs < 3;
            async move { if fail { Err(contended()) } else { Ok(runs) } }
        })
        .await;
        assert_eq!(r, Ok(3));
        let mut runs = 0;
        let r: StoreResult<()> = retrying(&m, || {
            runs += 1;
            async { Err(contended()) }
        })
        .await;
        assert_eq!((r, runs), (Err(contended()), ATTEMPTS));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("tessera_store_write_retries_total{result=\"retried\"} 4"), "{out}");
        assert!(out.contains("tessera_store_write_retries_total{result=\"gave_up\"} 1"), "{out}");
    }

    #[tokio::test]
    async fn any_other_answer_is_final_at_once() {
        let m = RetryMetrics::default();
        let mut runs = 0;
        let r: StoreResult<()> = retrying(&m, || {
            runs += 1;
            async { Err(StoreError::Unavailable("down".into())) }
        })
        .await;
        assert_eq!((r, runs), (Err(StoreError::Unavailable("down".into())), 1));
    }

    #[test]
    fn pauses_are_a_few_milliseconds() {
        for n in 1..ATTEMPTS {
            let p = pause(n);
            assert!(p >= Duration::from_millis(1) && p <= Duration::from_millis(8), "{p:?}");
        }
    }
}
