//! Fuzz targets for every parser that takes input from outside: each is a plain
//! `fn(&[u8])` that panics when a property breaks, so the same body runs under libFuzzer
//! (`fuzz_targets/`, coverage-guided, see `docs/fuzzing.md`), in the corpus replay test and
//! in the short mutation run of `cargo xtask fuzz` (stable flags, no instrumentation).
//!
//! | target | what it feeds | what must hold besides "never panics" |
//! |---|---|---|
//! | `cookie` | cookie headers, chunked values, storage records; and payloads sealed with the key | a valid cookie opens; what opens reseals and reopens to the same data |
//! | `filter` | `$filter`, `$orderby`, `$select` text | every value is a bound parameter; placeholders match the parameters |
//! | `policy` | policy document JSON, then evaluation | a document that parses re-parses from its stored form to the same document; Deny wins |
//! | `bodies` | every `/v2` JSON body, converted as the handlers do; gateway objects | refusals are 4xx naming a field; normalised gateway objects round-trip |
//! | `gateway_path` | request paths (and hosts, methods) against a routing table | the chosen route's prefix is a prefix of the path; the upstream path starts with `/` |
//! | `ca_cert` | a gateway CA certificate object's PEM; arbitrary DER in PEM; a real CA certificate with bytes overwritten | what is accepted has its DER's SHA-256 as digest, reads back the same, and expires exactly after its notAfter |
//! | `login` | the gateway sign-in body (form or JSON) and `next` | the redirect target is a local path: `/`, not `//` or `/\`, no control characters |

pub mod bodies;
pub mod ca_cert;
pub mod cookie;
pub mod filter;
pub mod gateway_path;
pub mod known;
pub mod login;
pub mod policy;
pub mod smoke;

/// One fuzz target: its name (the corpus directory under `corpus/`) and its body.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "cookie", run: cookie::fuzz_cookie },
    Target { name: "filter", run: filter::fuzz_filter },
    Target { name: "policy", run: policy::fuzz_policy },
    Target { name: "bodies", run: bodies::fuzz_bodies },
    Target { name: "gateway_path", run: gateway_path::fuzz_gateway_path },
    Target { name: "login", run: login::fuzz_login },
    Target { name: "ca_cert", run: ca_cert::fuzz_ca_cert },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// This crate's directory (corpora live in `corpus/<target>/`, crash inputs kept as
/// regression cases in `regressions/<target>/`).
pub fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted by name (empty if the directory does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Splits fuzz input into `n` parts at `0xFF` bytes (never valid UTF-8, so a separator the
/// text inside can't contain by accident); missing parts are empty.
pub(crate) fn split_parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |b| *b == 0xFF).collect();
    parts.resize(n, &[]);
    parts
}
