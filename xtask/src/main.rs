//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `ci`: formatting, clippy, and every test (the PostgreSQL tier too when
//!   `TEST_POSTGRES_URL` is set), then `bench --quick` to prove the benchmark still runs
//!   (no thresholds). This is the one command that must pass before a merge.
//! - `bench [--quick]`: the side-by-side benchmark (see BENCHMARKS.md).

mod bench;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(args.iter().any(|a| a == "--quick")),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | bench [--quick]>\n\n  ci      fmt check, clippy -D warnings, and all tests\n  bench   release build, servers side by side, one table of figures and ratios (see BENCHMARKS.md)"
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

fn ci() -> Result<(), String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => eprintln!("xtask: PostgreSQL tier enabled ({url})"),
        _ => eprintln!("xtask: TEST_POSTGRES_URL is not set; PostgreSQL tests will be skipped"),
    }
    // Tools some crates and tests need (protoc, terraform), installed into .tools/ if missing.
    tools::ensure()?;
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    if has_nextest() {
        run("cargo", &["nextest", "run", "--workspace", "--no-fail-fast"])?;
        // nextest does not run doctests.
        run("cargo", &["test", "--workspace", "--doc"])?;
    } else {
        run("cargo", &["test", "--workspace", "--no-fail-fast"])?;
    }
    // Proves the benchmark still runs end to end; its numbers are not checked here.
    bench::run(true)?;
    Ok(())
}
