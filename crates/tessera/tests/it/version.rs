//! `tessera --version` names the release and the git revision it was built from.

use std::process::Command;

#[test]
fn version_names_the_release_and_the_git_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let expected_revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let revision = std::env::var("TESSERA_GIT_REVISION").ok().filter(|r| !r.is_empty()).unwrap_or(expected_revision);
    assert_eq!(text.trim(), format!("tessera {} ({revision})", env!("CARGO_PKG_VERSION")));
}
