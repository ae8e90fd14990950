//! Tidy checks written as tests: the architecture's boundaries and the house style hold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Which workspace crates each crate may depend on (normal dependencies). Anything not
/// listed is a boundary violation: see ARCHITECTURE.md.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("tessera-domain", &[][..]),
        ("tessera-store", &["tessera-domain"][..]),
        // The SQL both backends speak: statements, row codecs, the filter translation.
        ("tessera-store-sql", &["tessera-domain", "tessera-store"][..]),
        ("tessera-store-sqlite", &["tessera-domain", "tessera-store", "tessera-store-sql"][..]),
        ("tessera-store-postgres", &["tessera-domain", "tessera-store", "tessera-store-sql"][..]),
        ("tessera-app", &["tessera-domain", "tessera-store"][..]),
        ("tessera-api-types", &[][..]),
        // The edges know the app and the domain, never the store (issue 11).
        ("tessera-server", &["tessera-domain", "tessera-app", "tessera-api-types"][..]),
        ("tessera-gateway", &["tessera-domain", "tessera-app", "tessera-api-types", "tessera-session-cookie"][..]),
        ("tessera-session-cookie", &[][..]),
        ("tessera-client", &["tessera-api-types"][..]),
        ("terraform-provider-tessera", &["tessera-api-types", "tessera-client"][..]),
        // The one wiring: settings, a backend, the app, the server, the gateway, the tasks.
        (
            "tessera-startup",
            &[
                "tessera-domain",
                "tessera-app",
                "tessera-server",
                "tessera-gateway",
                "tessera-store",
                "tessera-store-sqlite",
                "tessera-store-postgres",
            ][..],
        ),
        ("tessera", &["tessera-api-types", "tessera-app", "tessera-client", "tessera-domain", "tessera-startup"][..]),
        (
            "tessera-testkit",
            &[
                "tessera-api-types",
                "tessera-app",
                "tessera-client",
                "tessera-domain",
                "tessera-server",
                "tessera-gateway",
                "tessera-startup",
                "tessera-store",
                "tessera-store-sqlite",
                "tessera-store-postgres",
            ][..],
        ),
        ("tessera-bench", &["tessera-app", "tessera-domain", "tessera-store", "tessera-store-sqlite"][..]),
        (
            "tessera-fuzz",
            &[
                "tessera-api-types",
                "tessera-app",
                "tessera-domain",
                "tessera-gateway",
                "tessera-server",
                "tessera-session-cookie",
                "tessera-store",
                "tessera-store-sql",
            ][..],
        ),
        ("xtask", &[][..]),
    ])
}

#[test]
fn crate_dependencies_point_the_right_way() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<String> =
        meta["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    let rules = allowed();
    let mut violations = vec![];
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let Some(ok) = rules.get(name) else {
            violations.push(format!("{name} is not in the tidy table; add it with its allowed dependencies"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let normal = d["kind"].is_null();
            if normal && members.iter().any(|m| m == dep) && !ok.contains(&dep) {
                violations.push(format!("{name} depends on {dep}, which ARCHITECTURE.md forbids"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let root = workspace_root();
    let mut files = vec![];
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` opening line:\n{}", missing.join("\n"));
}

/// The app is sealed: nothing outside it reaches the store through it. Only `tessera-startup`
/// (the wiring) holds the store besides the app.
#[test]
fn the_app_hands_out_no_store() {
    let root = workspace_root();
    let mut files = vec![];
    rust_files(&root.join("crates/app/src"), &mut files);
    let leaks: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let name = f.strip_prefix(&root).unwrap().display().to_string();
            text.lines()
                .enumerate()
                .filter(|(_, l)| {
                    let l = l.trim_start();
                    // The store itself, by accessor or public field (a field that only reports
                    // on the store, like readiness, is fine).
                    let returns = l.split_once("->").is_some_and(|(_, r)| r.contains("dyn Store"));
                    let field = l.starts_with("pub ") && !l.starts_with("pub fn") && l.contains("dyn Store");
                    (l.starts_with("pub fn") && returns) || field
                })
                .map(|(i, l)| format!("{name}:{}: {}", i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(leaks.is_empty(), "the app must not expose its store:\n{}", leaks.join("\n"));
}

/// Parameter types that name the organization a store method works in: the id itself, or a
/// record that carries its `org_id`.
const SCOPED: &[&str] = &[
    ": OrgId",
    "&User",
    "&ApiKey",
    "&Group",
    "&Policy",
    "&Role",
    "&RoleTrust",
    "&OidcIssuer",
    "&Session",
    "&GatewayObject",
    "&GatewayRekey",
    "&AuditEvent",
    "&Organization",
    "&Bootstrap",
];

/// The store methods that are not confined to one organization, read from the store's traits.
fn unscoped_store_methods() -> std::collections::BTreeSet<String> {
    let root = workspace_root();
    let mut out = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root.join("crates/store/src")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("async fn ") {
            let sig = &rest[at + "async fn ".len()..];
            let end = sig.find("->").unwrap_or(sig.len());
            let (name, params) = sig[..end].split_once('(').unwrap();
            // Only the traits' methods: free functions (the audit scope helpers) take no `&self`.
            if params.contains("&self") && !SCOPED.iter().any(|t| params.contains(t)) {
                out.insert(name.trim().to_owned());
            }
            rest = &sig[end..];
        }
    }
    out
}

/// ARCHITECTURE.md's tenancy invariant names every store method that is not confined to one
/// organization, and no other: a new one must be argued for there.
#[test]
fn the_tenancy_exceptions_are_the_ones_architecture_names() {
    let doc = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    let start = doc.find("- **Tenancy**").expect("a Tenancy invariant in ARCHITECTURE.md");
    let para = &doc[start..];
    let para = &para[..para[2..].find("\n- ").map_or(para.len(), |e| e + 2)];
    let named: std::collections::BTreeSet<String> = para
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect();
    let found = unscoped_store_methods();
    assert!(found.contains("find_credential"), "the parser reads the store's traits: {found:?}");
    let undocumented: Vec<_> = found.difference(&named).collect();
    let stale: Vec<_> = named.difference(&found).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "store methods without an organization but not named in ARCHITECTURE.md's Tenancy invariant: \
         {undocumented:?}; named there but scoped (or gone): {stale:?}"
    );
}
