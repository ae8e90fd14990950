//! Logs to standard error, as the settings' `[log]` section says.
//!
//! Lines at info and below (the access logs' among them) are written in batches: an event
//! appends its formatted line to a buffer in memory, and a thread of its own writes the buffer
//! out [`FLUSH_AFTER`] after its first line, or at once when it holds [`WAKE_AT`] bytes. A
//! request then pays for a copy, not for a `write` to a pipe or a file. A warning or an error
//! is written at once, after every line before it, so nothing is reordered and what matters
//! most is never held back. The buffer is bounded: past [`MAX_BUFFERED`] bytes (standard
//! error is blocked, say) the event's own thread writes, so lines wait but are never dropped.
//! The [`LogGuard`] that [`init`] answers writes what is left when it is dropped, which
//! `tessera serve` does as it stops, and a panic writes the buffer before its message; a
//! process killed outright loses at most the last [`FLUSH_AFTER`] of info lines.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::log_format::{Clock, Lines};
use crate::settings::{LogFormat, LogSettings};

/// How long a line at info or below may wait in memory.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// How many buffered bytes wake the writing thread before [`FLUSH_AFTER`].
pub const WAKE_AT: usize = 64 * 1024;
/// How many buffered bytes make an event's own thread write them.
pub const MAX_BUFFERED: usize = 1024 * 1024;

/// Installs the process's log subscriber. `log.filter` (`TESSERA_LOG`) chooses what Tessera's
/// own code logs. Dependencies log what they are handed: tokio-postgres prints every query's
/// parameters at debug (password hashes, plugin secrets), HTTP stacks print headers (tokens,
/// cookies) at trace. So every target outside Tessera is capped at info, whatever the filter
/// says, even `trace` or `tokio_postgres=trace`.
///
/// Keep the answer until the process stops: dropping it writes the lines still buffered.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(settings: &LogSettings) -> LogGuard {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let dependencies_capped = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("tessera") || *meta.level() <= tracing::Level::INFO
    });
    // Colour only on a terminal: a file, a pipe or journald would keep the escape codes.
    let ansi = io::IsTerminal::is_terminal(&io::stderr());
    let (writer, guard) = Batched::start(Box::new(io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    // tracing-subscriber's formats, with the access lines written directly (log_format.rs).
    let format = tracing_subscriber::fmt::format().with_timer(Clock);
    match settings.format {
        LogFormat::Json => builder
            .json()
            .event_format(Lines { inner: format.json(), json: true })
            .finish()
            .with(dependencies_capped)
            .init(),
        LogFormat::Text => {
            builder.event_format(Lines { inner: format, json: false }).finish().with(dependencies_capped).init()
        }
    }
    guard
}

/// The shared state of a batched log output.
struct Sink {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The output and a spare buffer to swap with `pending`'s. Whoever writes takes this lock
    /// first and empties `pending` only then, so batches reach the output in order.
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// The writing thread waits for a first line (and must be woken for it).
    idle: bool,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves bytes, not broken invariants.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sink {
    fn push(&self, line: &[u8]) -> io::Result<()> {
        let mut p = lock(&self.pending);
        let was = p.buf.len();
        p.buf.extend_from_slice(line);
        let now = p.buf.len();
        let wake = (was == 0 && p.idle) || (was < WAKE_AT && now >= WAKE_AT);
        drop(p);
        if now >= MAX_BUFFERED {
            return self.flush();
        }
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// [`Sink::flush`] unless another thread is writing (for the panic hook, which may run
    /// on a thread that already holds the lock).
    fn flush_if_free(&self) {
        let Ok(mut out) = self.out.try_lock() else { return };
        let Ok(mut pending) = self.pending.try_lock() else { return };
        let (output, spare) = &mut *out;
        std::mem::swap(&mut pending.buf, spare);
        drop(pending);
        let _ = output.write_all(spare).and_then(|()| output.flush());
        spare.clear();
    }

    /// Writes out everything buffered so far, in order.
    fn flush(&self) -> io::Result<()> {
        let mut out = lock(&self.out);
        let (output, spare) = &mut *out;
        std::mem::swap(&mut lock(&self.pending).buf, spare);
        if spare.is_empty() {
            return Ok(());
        }
        let written = output.write_all(spare).and_then(|()| output.flush());
        spare.clear();
        // A burst's buffer is not kept for ever.
        spare.shrink_to(WAKE_AT * 2);
        written
    }

    /// The writing thread: waits for a first line, lets more gather for [`FLUSH_AFTER`] (or
    /// until [`WAKE_AT`] bytes), writes them; on stop, writes what is left and returns.
    fn run(&self) {
        loop {
            let mut p = lock(&self.pending);
            while p.buf.is_empty() && !p.stop {
                p.idle = true;
                p = self.wake.wait(p).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            p.idle = false;
            let (p, _) = self
                .wake
                .wait_timeout_while(p, FLUSH_AFTER, |p| !p.stop && p.buf.len() < WAKE_AT)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stop = p.stop;
            drop(p);
            // Standard error closed or full: nothing to tell but the lines themselves.
            let _ = self.flush();
            if stop {
                return;
            }
        }
    }
}

/// A log output written in batches ([`tracing_subscriber::fmt::MakeWriter`]); `.1`: the
/// writing thread runs (without it, every line is written at once).
#[derive(Clone)]
pub struct Batched(Arc<Sink>, bool);

impl Batched {
    /// Starts the writing thread over `output`; the guard stops it, writing what is left.
    pub fn start(output: Box<dyn Write + Send>) -> (Batched, LogGuard) {
        let sink = Arc::new(Sink {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            out: Mutex::new((output, Vec::new())),
        });
        let thread = {
            let sink = Arc::clone(&sink);
            std::thread::Builder::new().name("tessera-log".into()).spawn(move || sink.run()).ok()
        };
        // A panic's message (written by the default hook, straight to standard error) comes
        // after the lines logged before it.
        let previous = std::panic::take_hook();
        let weak = Arc::downgrade(&sink);
        std::panic::set_hook(Box::new(move |info| {
            if let Some(sink) = weak.upgrade() {
                sink.flush_if_free();
            }
            previous(info);
        }));
        (Batched(Arc::clone(&sink), thread.is_some()), LogGuard { sink, thread })
    }
}

/// One event's writer: buffered for info and below, written at once for warnings and errors
/// (and when the writing thread could not be started).
pub struct EventWriter<'a> {
    sink: &'a Sink,
    at_once: bool,
}

impl Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.push(buf)?;
        if self.at_once {
            self.sink.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.at_once { self.sink.flush() } else { Ok(()) }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> EventWriter<'a> {
        EventWriter { sink: &self.0, at_once: true }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> EventWriter<'a> {
        EventWriter { sink: &self.0, at_once: !self.1 || *meta.level() <= tracing::Level::WARN }
    }
}

/// Stops the log writer when dropped, after writing every buffered line.
pub struct LogGuard {
    sink: Arc<Sink>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        lock(&self.sink.pending).stop = true;
        self.sink.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.sink.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// An output the test reads while the log writes it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    fn subscriber(writer: Batched) -> impl tracing::Subscriber {
        tracing_subscriber::fmt().with_writer(writer).with_ansi(false).without_time().finish()
    }

    #[test]
    fn a_warning_is_written_at_once_after_every_line_before_it() {
        let out = Shared::default();
        let (writer, _guard) = Batched::start(Box::new(out.clone()));
        tracing::subscriber::with_default(subscriber(writer), || {
            tracing::info!("first, at info");
            tracing::warn!("second, a warning");
        });
        // No waiting: the warning's own write carried the line before it.
        let text = out.text();
        let (first, second) = (text.find("first, at info"), text.find("second, a warning"));
        assert!(first.is_some() && second.is_some() && first < second, "{text:?}");
    }

    #[test]
    fn info_lines_reach_the_output_without_anything_else_happening() {
        let out = Shared::default();
        let (writer, _guard) = Batched::start(Box::new(out.clone()));
        tracing::subscriber::with_default(subscriber(writer), || {
            tracing::info!("line one");
            tracing::info!("line two");
        });
        let start = Instant::now();
        while !out.text().contains("line two") {
            assert!(start.elapsed() < Duration::from_secs(10), "the writing thread never wrote: {:?}", out.text());
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = out.text();
        assert!(text.find("line one") < text.find("line two"), "{text:?}");
    }

    #[test]
    fn a_panic_writes_the_lines_before_it_first() {
        let out = Shared::default();
        let (writer, _guard) = Batched::start(Box::new(out.clone()));
        tracing::subscriber::with_default(subscriber(writer), || tracing::info!("before the panic"));
        assert!(std::panic::catch_unwind(|| panic!("a handler's bug")).is_err());
        // No waiting: the hook wrote the buffer before the panic's message.
        assert!(out.text().contains("before the panic"), "{:?}", out.text());
    }

    #[test]
    fn dropping_the_guard_writes_every_line_whole_and_in_each_threads_order() {
        let out = Shared::default();
        let (writer, guard) = Batched::start(Box::new(out.clone()));
        let dispatch = tracing::Dispatch::new(subscriber(writer));
        // Enough lines to cross the wake and the bound several times over.
        let (threads, lines) = (4, 20_000);
        std::thread::scope(|s| {
            for t in 0..threads {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        for i in 0..lines {
                            tracing::info!("thread {t} line {i} end");
                        }
                    })
                });
            }
        });
        drop(guard);
        let text = out.text();
        let mut next = vec![0; threads];
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "thread").unwrap_or_else(|| panic!("a torn line: {line:?}"));
            assert_eq!(words.get(at + 4), Some(&"end"), "a torn line: {line:?}");
            let (t, i): (usize, usize) = (words[at + 1].parse().unwrap(), words[at + 3].parse().unwrap());
            assert_eq!(i, next[t], "thread {t}'s lines out of order or lost");
            next[t] += 1;
        }
        assert_eq!(next, vec![lines; threads], "lines lost");
    }
}
