//! The short fuzz run CI can afford on plain stable flags: replay a target's committed corpus,
//! then mutate it (byte flips, inserts, deletions, splices, dictionary tokens) for a bounded
//! number of executions. Not coverage-guided, so it finds regressions near the corpus rather
//! than new paths; the long runs use libFuzzer (`docs/fuzzing.md`).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Target;

/// What one smoke run did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Corpus files replayed.
    pub replayed: usize,
    /// Mutated inputs run after the replay.
    pub mutated: u64,
    pub elapsed: Duration,
}

/// xorshift64*: small, seeded, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// The corpus of `target`: every file in `corpus/<name>/`.
pub fn corpus(target: &Target) -> Vec<Vec<u8>> {
    crate::files_in(&crate::crate_dir().join("corpus").join(target.name))
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// The tokens of `dict/<name>.dict` (libFuzzer's format: one `"token"` per line, `\xNN`,
/// `\\` and `\"` escapes; `#` comments).
pub fn dictionary(target: &Target) -> Vec<Vec<u8>> {
    let path = crate::crate_dir().join("dict").join(format!("{}.dict", target.name));
    std::fs::read_to_string(path).map(|text| parse_dictionary(&text)).unwrap_or_default()
}

fn parse_dictionary(text: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Some(body) = line.find('"').and_then(|i| line[i + 1..].strip_suffix('"')) else { continue };
        let b = body.as_bytes();
        let mut token = vec![];
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1)) {
                (b'\\', Some(b'x')) if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
                    token.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 4;
                }
                (b'\\', Some(&c)) => {
                    token.push(c);
                    i += 2;
                }
                (c, _) => {
                    token.push(c);
                    i += 1;
                }
            }
        }
        out.push(token);
    }
    out
}

/// Runs `input`; on a panic prints the input (escaped, and where to put it) before unwinding.
pub fn run_one(target: &Target, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        eprintln!(
            "fuzz target `{}` failed on this input ({} bytes); save it under crates/fuzz/regressions/{}/:\n{}",
            target.name,
            input.len(),
            target.name,
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

/// Replays the corpus, then runs mutated inputs until `execs` ran or `budget` passed.
pub fn run(target: &Target, execs: u64, budget: Duration, seed: u64) -> Outcome {
    let start = Instant::now();
    let mut corpus = corpus(target);
    for input in &corpus {
        run_one(target, input);
    }
    let replayed = corpus.len();
    if corpus.is_empty() {
        corpus.push(vec![]);
    }
    let dict = dictionary(target);
    let mut rng = Rng(seed | 1);
    let mut mutated = 0;
    let mut input = Vec::new();
    while mutated < execs && start.elapsed() < budget {
        input.clear();
        input.extend_from_slice(&corpus[rng.below(corpus.len())]);
        for _ in 0..1 + rng.below(4) {
            mutate(&mut input, &corpus, &dict, &mut rng);
        }
        run_one(target, &input);
        mutated += 1;
    }
    Outcome { replayed, mutated, elapsed: start.elapsed() }
}

const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff/.%\\;?#&=\"'(),: \t\r\n";

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], dict: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 => {
            let b = if rng.below(2) == 0 { INTERESTING[rng.below(INTERESTING.len())] } else { rng.next() as u8 };
            input.insert(rng.below(len + 1), b);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            input.drain(at..at + n);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            let copy = input[at..at + n].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, copy);
        }
        5 => {
            let other = &corpus[rng.below(corpus.len())];
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                let to = rng.below(len + 1);
                input.splice(to..to, other[from..from + n].iter().copied());
            }
        }
        6 | 7 if !dict.is_empty() => {
            let token = &dict[rng.below(dict.len())];
            let at = rng.below(len + 1);
            if rng.below(2) == 0 || at == len {
                input.splice(at..at, token.iter().copied());
            } else {
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
        }
        _ => {
            let to = rng.below(len + 1);
            input.insert(to, rng.next() as u8);
        }
    }
    // Keep inputs small, as libFuzzer's default -max_len does.
    input.truncate(8192);
}

/// Runs every file of `dir` through `target` (a crash directory, a corpus, regressions).
pub fn replay_dir(target: &Target, dir: &Path) -> usize {
    let files = crate::files_in(dir);
    for f in &files {
        let input = std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        run_one(target, &input);
    }
    files.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_escapes() {
        let d = parse_dictionary("# c\n\"a\\x2e\\\"b\"\nname=\"%2f\"\n\n");
        assert_eq!(d, vec![b"a.\"b".to_vec(), b"%2f".to_vec()]);
    }
}
