//! `cargo xtask fuzz [--seconds N]`: the fuzz run CI affords. Every target's committed corpus
//! (`crates/fuzz/corpus/`) is replayed, then each target runs mutated inputs for a bounded
//! number of executions, all within N seconds (default 45). Plain stable build in the dev
//! profile (the tests' build, with overflow checks): no instrumentation, no libFuzzer. The
//! long coverage-guided runs are described in docs/fuzzing.md.

/// Runs the smoke fuzzing; fails if any target panics.
pub fn run(seconds: u64) -> Result<(), String> {
    let seconds = seconds.to_string();
    crate::run(
        "cargo",
        &["run", "--quiet", "-p", "tessera-fuzz", "--bin", "tessera-fuzz", "--", "smoke", "--seconds", &seconds],
    )
}

/// `--seconds N` from the command line, else the default.
pub fn seconds(args: &[String]) -> u64 {
    args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok()).unwrap_or(45)
}
