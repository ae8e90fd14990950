//! Runs the test suite and counts the tests that passed on each backend, by the naming
//! convention the suites follow: a test whose path names `postgres` (the `postgres::` half of
//! `both_backends!`, `postgres_only!`, `postgres_…` tests) ran on PostgreSQL, one naming
//! `sqlite` on SQLite, and each backend's conformance binary (`tessera-store-<backend>::it`)
//! on its own backend.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Tests that passed, per backend.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub postgres: usize,
    pub sqlite: usize,
    /// Tests of no particular backend (pure code, tools, the binary on its default store).
    pub other: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tests passed per backend: PostgreSQL {}, SQLite {}, no particular backend {}",
            self.postgres, self.sqlite, self.other
        )
    }
}

impl Counts {
    /// Counts one passed test, given as `<binary>$<path>` (nextest) or `<path>` (libtest).
    fn add(&mut self, name: &str) {
        let (binary, path) = name.split_once('$').unwrap_or(("", name));
        let path = path.to_ascii_lowercase();
        if path.contains("postgres") || binary == "tessera-store-postgres::it" {
            self.postgres += 1;
        } else if path.contains("sqlite") || binary == "tessera-store-sqlite::it" {
            self.sqlite += 1;
        } else {
            self.other += 1;
        }
    }
}

/// `cargo nextest run --workspace` with its libtest-json report on standard output (the human
/// report still goes to standard error). Returns whether every test passed, and the counts.
pub fn nextest() -> Result<(Result<(), String>, Counts), String> {
    let args = ["nextest", "run", "--workspace", "--no-fail-fast", "--message-format", "libtest-json-plus"];
    counted("cargo", &args, &[("NEXTEST_EXPERIMENTAL_LIBTEST_JSON", "1")], |line, counts| {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { return };
        if event["type"] == "test" && event["event"] == "ok" {
            counts.add(event["name"].as_str().unwrap_or_default());
        }
    })
}

/// `cargo test --workspace`, counting libtest's `test <path> ... ok` lines (which name no
/// binary, so the conformance suites count only by their paths).
pub fn cargo_test() -> Result<(Result<(), String>, Counts), String> {
    counted("cargo", &["test", "--workspace", "--no-fail-fast"], &[], |line, counts| {
        if let Some(name) = line.strip_prefix("test ").and_then(|l| l.strip_suffix(" ... ok")) {
            counts.add(name);
        }
    })
}

/// Runs a command, echoing its standard output line by line while `count` reads it.
fn counted(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    count: impl Fn(&str, &mut Counts),
) -> Result<(Result<(), String>, Counts), String> {
    eprintln!("+ {program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().ok_or("no standard output")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading {program}'s output: {e}"))?;
        // The JSON events are for this count; libtest's own lines are for people too.
        if !line.starts_with('{') {
            println!("{line}");
        }
        count(&line, &mut counts);
    }
    let status = child.wait().map_err(|e| format!("waiting for {program}: {e}"))?;
    let outcome =
        if status.success() { Ok(()) } else { Err(format!("{program} {} failed ({status})", args.join(" "))) };
    Ok((outcome, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_are_counted_by_their_backend() {
        let mut c = Counts::default();
        for name in [
            "tessera-testkit::it$iam::postgres::users_round_trip",
            "tessera-testkit::it$iam::sqlite::users_round_trip",
            "tessera-testkit::it$nodes::postgres::a_lost_change_feed_turns_caches_off_until_it_is_back",
            "tessera::it$crash::postgres_loses_no_acknowledged_session",
            "tessera::it$crash::sqlite_loses_no_acknowledged_session",
            "tessera-store-postgres::it$bootstrap_runs_once",
            "tessera-store-sqlite::it$bootstrap_runs_once",
            "tessera-domain::tessera_domain$policy::tests::deny_wins",
            "iam::postgres::users_round_trip",
        ] {
            c.add(name);
        }
        assert_eq!(c, Counts { postgres: 5, sqlite: 3, other: 1 });
    }
}
