//! `tessera-fuzz`: the fuzz targets without libFuzzer, on plain stable builds.
//!
//! - `smoke [--seconds N] [--execs N]`: every target's corpus replayed, then mutated inputs
//!   for at most N executions per target, all within N seconds (what `cargo xtask fuzz` runs).
//! - `run <target> <file or directory>...`: replays inputs, e.g. a crash libFuzzer saved.
//! - `list`: the targets.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tessera_fuzz::{TARGETS, smoke, target};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("smoke") => {
            let seconds = flag("--seconds", 50);
            let execs = flag("--execs", 200_000);
            // The budget is shared: each target gets an equal slice of what is left.
            let start = std::time::Instant::now();
            for (i, t) in TARGETS.iter().enumerate() {
                let left = Duration::from_secs(seconds).saturating_sub(start.elapsed());
                let slice = left / (TARGETS.len() - i) as u32;
                let o = smoke::run(t, execs, slice, 0x5eed ^ i as u64);
                println!(
                    "fuzz {:<13} corpus {:>4} replayed, {:>7} mutated inputs in {:>5.1} s",
                    t.name,
                    o.replayed,
                    o.mutated,
                    o.elapsed.as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Some("run") if args.len() >= 3 => {
            let Some(t) = target(&args[1]) else {
                eprintln!("unknown target {}", args[1]);
                return ExitCode::from(2);
            };
            for p in &args[2..] {
                let p = Path::new(p);
                let n = if p.is_dir() {
                    smoke::replay_dir(&t, p)
                } else {
                    smoke::run_one(&t, &std::fs::read(p).expect("readable input"));
                    1
                };
                println!("{}: {n} input(s) ran clean", p.display());
            }
            ExitCode::SUCCESS
        }
        Some("list") => {
            for t in TARGETS {
                println!("{}", t.name);
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: tessera-fuzz smoke [--seconds N] [--execs N] | run <target> <path>... | list");
            ExitCode::from(2)
        }
    }
}
