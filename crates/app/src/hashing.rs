//! Bounded password hashing: Argon2id runs on at most a few blocking threads at once, and
//! at most a short queue of requests may wait for them; a request past that is refused at
//! once with [`AppError::Overloaded`], which the API answers 429 with `Retry-After`.
//!
//! Each hash takes 19 MiB and tens of milliseconds of one core, on purpose. Unbounded, a
//! sign-in flood fills Tokio's blocking pool (which SQLite reads share), takes gigabytes of
//! memory, holds store connections, and starves every other request. Bounded, a flood costs
//! at most `permits` hashes of memory and the token-authenticated path keeps its cores.
//!
//! Admission and hashing are two steps. [`PasswordHashing::admit`] decides, without waiting,
//! whether a request may proceed, before it reads or writes anything (a refused sign-in
//! counts no failure and touches no store connection). [`PasswordHashing::run`] then waits,
//! first come first served, for a free hashing thread; admitted requests are few, so the wait
//! is bounded by `queue / permits` hash times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::{App, AppError, AppResult};

/// How much hashing may run and wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes running at once (each on a blocking thread, each holding 19 MiB).
    pub permits: usize,
    /// Admitted requests allowed to wait for a hashing thread; the next one is refused.
    pub queue: usize,
}

impl Default for HashingLimits {
    /// One hash per core and a queue of 16 per core (under a second of waiting).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self { permits: cores, queue: 16 * cores }
    }
}

/// The gate every password hash and verification goes through.
pub struct PasswordHashing {
    limits: HashingLimits,
    permits: Arc<Semaphore>,
    admitted: AtomicUsize,
    /// A moving average of one hash's duration, in microseconds, for `Retry-After`.
    average_us: AtomicU64,
}

/// A request's admission to password hashing, given back when the request ends (or is
/// cancelled).
#[must_use = "the admission ends when dropped"]
pub struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordHashing {
    pub fn new(limits: HashingLimits) -> Self {
        let limits = HashingLimits { permits: limits.permits.max(1), ..limits };
        Self {
            limits,
            permits: Arc::new(Semaphore::new(limits.permits)),
            admitted: AtomicUsize::new(0),
            average_us: AtomicU64::new(50_000),
        }
    }

    pub fn limits(&self) -> HashingLimits {
        self.limits
    }

    /// Admits a request that will hash, or refuses it at once when `permits + queue` are
    /// already admitted.
    pub fn admit(&self) -> AppResult<Admission<'_>> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(&self.admitted);
        if before >= self.limits.permits + self.limits.queue {
            drop(admission);
            return Err(self.overloaded());
        }
        Ok(admission)
    }

    /// Runs `work` (a hash or a verification) on a blocking thread once one of the `permits`
    /// is free, in arrival order. Call it under an [`Admission`].
    ///
    /// The permit moves into the blocking job, so it is held until the hash really ends even
    /// when the request that asked for it is cancelled: the bound is on work, not on futures.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("the hashing gate is closed".into()))?;
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AppError::Internal(format!("password hashing stopped: {e}")))?;
        self.record(started.elapsed());
        Ok(out)
    }

    fn record(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let old = self.average_us.load(Ordering::Relaxed);
        // An exponential moving average (1/8 weight); races only blur it, which is fine.
        self.average_us.store(old - old / 8 + us / 8, Ordering::Relaxed);
    }

    /// The refusal, with how long the admitted requests would take to drain (1 to 60 s).
    fn overloaded(&self) -> AppError {
        let ahead = self.admitted.load(Ordering::Relaxed) as u64;
        let drain_us = ahead * self.average_us.load(Ordering::Relaxed) / self.limits.permits as u64;
        let retry_after_secs = drain_us.div_ceil(1_000_000).clamp(1, 60);
        AppError::Overloaded {
            message: format!("too many sign-ins and password changes at once; retry in {retry_after_secs} s"),
            retry_after_secs,
        }
    }
}

impl App {
    /// Replaces the password-hashing limits (the default is one hash per core).
    pub fn with_hashing_limits(mut self, limits: HashingLimits) -> Self {
        self.hashing = PasswordHashing::new(limits);
        self
    }

    /// The password-hashing gate, for callers that report its limits.
    pub fn password_hashing(&self) -> &PasswordHashing {
        &self.hashing
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(permits: usize, queue: usize) -> Arc<PasswordHashing> {
        Arc::new(PasswordHashing::new(HashingLimits { permits, queue }))
    }

    /// A blocking job that holds its permit until the test lets it go.
    fn held(gate: &Arc<PasswordHashing>, release: &Arc<std::sync::Barrier>) -> tokio::task::JoinHandle<AppResult<()>> {
        let (gate, release) = (Arc::clone(gate), Arc::clone(release));
        tokio::spawn(async move {
            gate.run(move || {
                release.wait();
            })
            .await
        })
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn beyond_permits_and_queue_a_request_is_refused_at_once_with_a_retry_after() {
        let g = gate(2, 3);
        let admitted: Vec<_> = (0..5).map(|i| g.admit().unwrap_or_else(|e| panic!("admission {i}: {e}"))).collect();
        match g.admit() {
            Err(AppError::Overloaded { retry_after_secs, message }) => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
                assert!(message.contains("retry in"), "{message}");
            }
            Err(other) => panic!("expected Overloaded, got {other:?}"),
            Ok(_) => panic!("a sixth request was admitted past 2 permits and a queue of 3"),
        }
        assert_eq!(g.admitted.load(Ordering::Acquire), 5, "a refusal takes no place");
        drop(admitted);
        assert_eq!(g.admitted.load(Ordering::Acquire), 0, "every admission was given back");
        assert!(g.admit().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admitted_hashes_wait_their_turn_and_run() {
        let g = gate(1, 4);
        let release = Arc::new(std::sync::Barrier::new(2));
        let running = held(&g, &release);
        until("the first hash to hold the permit", || g.permits.available_permits() == 0).await;
        let queued: Vec<_> = (0..3)
            .map(|i| {
                let g = Arc::clone(&g);
                tokio::spawn(async move { g.run(move || i).await })
            })
            .collect();
        release.wait();
        running.await.unwrap().unwrap();
        for (i, q) in queued.into_iter().enumerate() {
            assert_eq!(q.await.unwrap().unwrap(), i, "queued hashes run once the permit frees");
        }
        assert_eq!(g.permits.available_permits(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_keeps_its_permit_until_the_hash_ends() {
        let g = gate(1, 10);
        let release = Arc::new(std::sync::Barrier::new(2));
        let running = held(&g, &release);
        until("the first hash to hold the permit", || g.permits.available_permits() == 0).await;
        running.abort();
        let _ = running.await;
        assert_eq!(g.permits.available_permits(), 0, "the blocking hash still runs, so its permit is still taken");
        release.wait();
        until("the permit to come back", || g.permits.available_permits() == 1).await;
    }
}
