//! Bounded password hashing: Argon2id runs on at most a few dedicated threads at once, and
//! at most a short queue of requests may wait for them; a request past that is refused at
//! once with [`AppError::Overloaded`], which the API answers 429 with `Retry-After`.
//!
//! Each hash takes 19 MiB and tens of milliseconds of one core, on purpose. Unbounded, a
//! sign-in flood fills Tokio's blocking pool (which SQLite reads share), takes gigabytes of
//! memory, holds store connections, and starves every other request. Bounded, a flood costs
//! at most `permits` hashes of memory.
//!
//! Hashes run on `permits` threads of their own (started on the first hash), not on Tokio's
//! blocking pool, and each lowers its own CPU priority once when it starts (`nice`, default
//! 10; Linux). When sign-ins and token-authenticated requests compete for the cores, the
//! scheduler gives the cores to the requests (a nice-10 thread weighs about a tenth of a
//! normal one) and hashing gets what they leave; on an idle machine a hash runs at full
//! speed. A process that is not privileged cannot raise a thread's priority back, which is
//! why the threads are dedicated rather than borrowed from the blocking pool.
//!
//! Admission and hashing are two steps. [`PasswordHashing::admit`] decides, without waiting,
//! whether a request may proceed, before it reads or writes anything (a refused sign-in
//! counts no failure and touches no store connection). [`PasswordHashing::run`] then waits,
//! first come first served, for a free hashing thread; admitted requests are few, so the wait
//! is bounded by `queue / permits` hash times.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::{App, AppError, AppResult};

/// How much hashing may run and wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes running at once (each on a hashing thread of its own, each holding 19 MiB).
    pub permits: usize,
    /// Admitted requests allowed to wait for a hashing thread; the next one is refused.
    pub queue: usize,
    /// The hashing threads' nice value (0 to 19; Linux): how much lower than other work
    /// their CPU priority is. 0 leaves it as the process's.
    pub nice: i32,
}

/// The hashing threads' default nice value: a nice-10 thread weighs about a tenth of a
/// normal one when both want a core.
pub const DEFAULT_NICE: i32 = 10;

impl Default for HashingLimits {
    /// One hash per core, a queue of 16 per core (under a second of waiting), nice 10.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self { permits: cores, queue: 16 * cores, nice: DEFAULT_NICE }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads, started on the first hash; they end when the gate is dropped.
struct Threads {
    jobs: mpsc::Sender<Job>,
}

impl Threads {
    fn start(count: usize, nice: i32) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..count {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new().name(format!("tessera-hash-{i}")).spawn(move || {
                lower_priority(nice);
                loop {
                    // The lock is held only while waiting for a job, never while hashing.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A job that panics drops its answer's sender (its request gets an
                        // error) and its permit; the thread goes on to the next job.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                // The threads that did start take the jobs; with none, `run` answers an error.
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self { jobs }
    }
}

/// Lowers the calling thread's CPU priority to `nice` (never raises it: an unprivileged
/// process could not raise it back).
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    let nice = nice.clamp(0, 19);
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value alone.
    match getpriority_process(me) {
        Ok(now) if now >= nice => {}
        _ => {
            if let Err(e) = setpriority_process(me, nice) {
                tracing::warn!(error = %e, nice, "cannot lower the password-hashing thread's priority");
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

/// The gate every password hash and verification goes through.
pub struct PasswordHashing {
    limits: HashingLimits,
    permits: Arc<Semaphore>,
    threads: OnceLock<Threads>,
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
            threads: OnceLock::new(),
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

    /// Runs `work` (a hash or a verification) on a hashing thread once one of the `permits`
    /// is free, in arrival order. Call it under an [`Admission`].
    ///
    /// The permit moves into the job, so it is held until the hash really ends even when the
    /// request that asked for it is cancelled: the bound is on work, not on futures. There
    /// are as many threads as permits, so a job holding a permit finds a thread free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("the hashing gate is closed".into()))?;
        let started = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            drop(permit);
            let _ = tx.send(out);
        });
        let threads = self.threads.get_or_init(|| Threads::start(self.limits.permits, self.limits.nice));
        threads.jobs.send(job).map_err(|_| AppError::Internal("no password-hashing thread is running".into()))?;
        let out = rx.await.map_err(|_| AppError::Internal("password hashing stopped".into()))?;
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
    /// Replaces the password-hashing limits (the default is one hash per core, at nice 10).
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
        Arc::new(PasswordHashing::new(HashingLimits { permits, queue, nice: DEFAULT_NICE }))
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

    /// The nice value of the calling thread, as the kernel reports it (field 19 of
    /// /proc/thread-self/stat, counted after the command name's closing parenthesis).
    #[cfg(target_os = "linux")]
    fn my_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        // Fields from 3 (state) on; nice is field 19.
        after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_run_on_threads_at_the_configured_nice_value_and_requests_keep_theirs() {
        let before = my_nice();
        let nice = 13;
        assert!(before < nice, "the test process already runs at nice {before}");
        let g = Arc::new(PasswordHashing::new(HashingLimits { permits: 2, queue: 4, nice }));
        let seen: Vec<_> = (0..6)
            .map(|_| {
                let g = Arc::clone(&g);
                tokio::spawn(
                    async move { g.run(|| (my_nice(), std::thread::current().name().map(str::to_owned))).await },
                )
            })
            .collect();
        for s in seen {
            let (n, name) = s.await.unwrap().unwrap();
            assert_eq!(n, nice, "a hash ran at nice {n} on {name:?}");
            assert!(name.as_deref().is_some_and(|n| n.starts_with("tessera-hash-")), "a hash ran on {name:?}");
        }
        assert_eq!(my_nice(), before, "the caller's thread kept its priority");
        let blocking = tokio::task::spawn_blocking(my_nice).await.unwrap();
        assert_eq!(blocking, before, "Tokio's blocking pool (SQLite's readers) kept its priority");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_that_panics_is_an_error_and_the_gate_keeps_working() {
        let g = gate(1, 4);
        let failed = g.run(|| -> u8 { panic!("a broken hash") }).await;
        assert!(matches!(failed, Err(AppError::Internal(_))), "{:?}", failed.map(|_| ()));
        assert_eq!(g.permits.available_permits(), 1, "the permit came back");
        assert_eq!(g.run(|| 7).await.unwrap(), 7, "the one hashing thread still takes jobs");
    }
}
