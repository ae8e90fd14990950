//! `tessera config check` and the layers as an operator meets them: a file, variables,
//! flags; and `tessera serve` refusing a port in use before it creates anything.

use std::process::{Command, Output, Stdio};

fn tessera(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    cmd.envs(envs.iter().copied());
    cmd.output().expect("tessera runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_check_prints_each_layer_over_the_one_below_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:7001\"\nmax_headers = 50\n\n[database]\nurl = \"postgres://tessera:hunter2-db-password@db.internal:5432/tessera\"\n\n[sessions]\nretention_days = 7\nsweep_interval = 5\n",
    )
    .unwrap();
    let out = tessera(
        &["config", "check", "--config", file.to_str().unwrap(), "--sweep-interval", "9"],
        &[
            ("TESSERA_SESSION_RETENTION_DAYS", "8"),
            ("TESSERA_SWEEP_INTERVAL", "6"),
            ("TESSERA_BOOTSTRAP_API_KEY", "operator-key-0123456789abcdef0123456789"),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:7001\""), "the file over the default:\n{stdout}");
    assert!(stdout.contains("max_headers = 50"), "{stdout}");
    assert!(stdout.contains("retention_days = 8"), "the variable over the file:\n{stdout}");
    assert!(stdout.contains("sweep_interval = 9"), "the flag over the variable:\n{stdout}");
    assert!(stdout.contains("postgres://tessera:***@db.internal:5432/tessera"), "{stdout}");
    assert!(stdout.contains("api_key = \"***\""), "{stdout}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains("hunter2"), "the database password was printed:\n{output}");
        assert!(!output.contains("operator-key-0123"), "the bootstrap key was printed:\n{output}");
    }
}

#[test]
fn config_check_refuses_an_unknown_key_naming_it_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:7001\"\n\n[sessions]\nretention_dayz = 3\n").unwrap();
    let out = tessera(&["config", "check", "--config", file.to_str().unwrap()], &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("retention_dayz") && stderr.contains("line 5"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is printed as the configuration: {}", text(&out.stdout));

    // `tessera serve` reads the same layers and refuses the same file before it starts.
    let out = tessera(&["serve", "--config", file.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("retention_dayz"), "{}", text(&out.stderr));
}

#[test]
fn serve_on_a_port_in_use_names_the_listener_and_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = tessera(
        &["serve", "--listen", "127.0.0.1:0", "--gateway-listen", &taken, "--data-dir", data.to_str().unwrap()],
        &[],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot listen on {taken} for the gateway (--gateway-listen")), "{stderr}");
    assert!(!text(&out.stdout).contains("tessera_ak_"), "no key was minted");
    assert!(!data.exists(), "a refused start created the data directory (and so a database)");
}
