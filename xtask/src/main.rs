//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `ci`: formatting, clippy, and every test (the PostgreSQL tier too when
//!   `TEST_POSTGRES_URL` is set; under `CI` it must be), printing how many tests passed on
//!   each backend, then `bench --smoke` to prove the benchmark still runs (no thresholds).
//!   This is the one command that must pass before a merge.
//! - `bench [--quick | --smoke]`: the side-by-side benchmark (see BENCHMARKS.md).
//! - `schemathesis [--examples N]`: the API fuzzer against a live server and the OpenAPI
//!   document (0 server errors, 0 answers the document does not allow); `ci` runs it.
//! - `ui`: the admin console's end-to-end test in a headless Chromium (see `ui.rs`); `ci`
//!   runs it.
//! - `tools`: installs what some tests need into `.tools/` (terraform, a Python for the
//!   reference cookie decoder); `ci` does this first.

mod bench;
mod fuzz;
mod schemathesis;
mod tally;
mod tools;
mod ui;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tools") => tools::ensure(),
        Some("bench") => bench::run(if args.iter().any(|a| a == "--smoke") {
            bench::Mode::Smoke
        } else if args.iter().any(|a| a == "--quick") {
            bench::Mode::Quick
        } else {
            bench::Mode::Full
        }),
        Some("fuzz") => fuzz::run(fuzz::seconds(&args)),
        Some("schemathesis") => schemathesis::run(&args),
        Some("ui") => ui::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | bench [--quick | --smoke] | tools | schemathesis [--examples N]>\n\n  ci      fmt check, clippy -D warnings, and all tests\n  schemathesis  the API fuzzer against a live server and /v2/openapi.json\n  tools   install what the tests need into .tools/ (terraform, python with cryptography)\n  bench   release build, servers side by side, one table of figures and ratios (see BENCHMARKS.md)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status().map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{program} {} failed ({status})", args.join(" "))) }
}

fn has_nextest() -> bool {
    Command::new("cargo").args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// True when running under CI: `CI` is set to anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

fn ci() -> Result<(), String> {
    let postgres = std::env::var("TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    match &postgres {
        Some(url) => eprintln!("xtask: PostgreSQL tier enabled ({url})"),
        // A CI run that skips the PostgreSQL tier would pass without testing half the product.
        None if in_ci() => return Err("CI is set but TEST_POSTGRES_URL is not: the PostgreSQL tier must run".into()),
        None => eprintln!("xtask: TEST_POSTGRES_URL is not set; the PostgreSQL tests will print SKIPPED"),
    }
    // Tools some crates and tests need (protoc, terraform, a Python for the reference cookie
    // decoder), installed into .tools/ if missing.
    tools::ensure()?;
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    let (tests, counts) = if has_nextest() {
        let (outcome, counts) = tally::nextest()?;
        // nextest does not run doctests.
        let doc = run("cargo", &["test", "--workspace", "--doc"]);
        (outcome.and(doc), counts)
    } else {
        tally::cargo_test()?
    };
    if postgres.is_some() {
        eprintln!("xtask: {counts}");
    } else {
        // Each of them printed SKIPPED and returned: none of them ran.
        eprintln!(
            "xtask: tests passed per backend: PostgreSQL 0 ({} SKIPPED: TEST_POSTGRES_URL is not set), SQLite {}, \
             no particular backend {}",
            counts.postgres, counts.sqlite, counts.other
        );
    }
    tests?;
    if postgres.is_some() && counts.postgres == 0 {
        return Err("no PostgreSQL test ran although TEST_POSTGRES_URL is set".into());
    }
    // The live API against its OpenAPI document (stateless and stateful; about a minute).
    schemathesis::run(&[])?;
    // The admin console in Debian's Chromium (Playwright), with axe-core in each view.
    ui::run()?;
    // Replays the fuzz corpora and fuzzes every target briefly (bounded: 45 s in all).
    fuzz::run(45)?;
    // Proves every row of the benchmark still runs, on the debug binaries the tests built
    // (no second, release build in CI); its numbers are not checked and mean nothing.
    bench::run(bench::Mode::Smoke)?;
    Ok(())
}
