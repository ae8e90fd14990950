//! Defaults < file < environment < flags, each layer proven to override the one below; the
//! file's unknown keys; secrets never shown; docs/config.md agreeing with the code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Command, FromArgMatches};
use tessera_startup::{Flags, SETTINGS, Settings};

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

/// The flags as clap parses a command line (only typed flags count, not clap's view of the
/// environment).
fn flags(args: &[&str]) -> Flags {
    let cmd = Flags::augment_args(Command::new("serve").no_binary_name(true));
    Flags::from_arg_matches(&cmd.try_get_matches_from(args).unwrap()).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const FILE: &str = r#"
[server]
listen = "127.0.0.1:7001"
trusted_proxies = ["10.0.0.0/8"]

[sessions]
retention_days = 7
"#;

#[test]
fn the_file_overrides_the_defaults() {
    let (_dir, path) = file(FILE);
    let s = Settings::load(Some(&path), env(&[]), &vec![]).unwrap();
    assert_eq!(s.server.listen, addr("127.0.0.1:7001"));
    assert_eq!(s.server.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.0/8"]);
    assert_eq!(s.sessions.retention_days, 7);
    // What the file does not say keeps its default.
    assert_eq!(s.audit.retention_days, Settings::default().audit.retention_days);
    assert_eq!(Settings::default().server.listen, addr("127.0.0.1:8080"));
}

#[test]
fn the_environment_overrides_the_file() {
    let (_dir, path) = file(FILE);
    let vars = env(&[("TESSERA_LISTEN", "127.0.0.1:7002"), ("TESSERA_TRUSTED_PROXIES", "192.0.2.1, 10.1.0.0/16")]);
    let s = Settings::load(Some(&path), vars, &vec![]).unwrap();
    assert_eq!(s.server.listen, addr("127.0.0.1:7002"));
    assert_eq!(
        s.server.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["192.0.2.1/32", "10.1.0.0/16"],
        "a list from the environment replaces the file's"
    );
    assert_eq!(s.sessions.retention_days, 7, "what the environment does not say stays as the file says");
}

#[test]
fn a_flag_overrides_the_environment() {
    let (_dir, path) = file(FILE);
    let typed = flags(&["--listen", "127.0.0.1:7003", "--trusted-proxy", "203.0.113.0/24", "--cookie-secure"]);
    let vars = env(&[("TESSERA_LISTEN", "127.0.0.1:7002"), ("TESSERA_COOKIE_SECURE", "false")]);
    let s = Settings::load(Some(&path), vars, &typed.values).unwrap();
    assert_eq!(s.server.listen, addr("127.0.0.1:7003"));
    assert_eq!(s.server.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>(), ["203.0.113.0/24"]);
    assert!(s.server.cookie_secure);
}

#[test]
fn an_unknown_key_in_the_file_is_refused_by_name_and_line() {
    let (_dir, path) = file("[server]\nlisten = \"127.0.0.1:7001\"\nlisen = \"127.0.0.1:7002\"\n");
    let e = Settings::load(Some(&path), env(&[]), &vec![]).unwrap_err().to_string();
    assert!(e.contains("lisen"), "{e}");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains(&path.display().to_string()), "{e}");

    let (_dir, path) = file("[sever]\nlisten = \"127.0.0.1:7001\"\n");
    let e = Settings::load(Some(&path), env(&[]), &vec![]).unwrap_err().to_string();
    assert!(e.contains("sever") && e.contains("line 1"), "{e}");
}

#[test]
fn a_bad_value_names_where_it_came_from() {
    let e = Settings::load(None, env(&[("TESSERA_TRUSTED_PROXIES", "not-an-ip")]), &vec![]).unwrap_err().to_string();
    assert!(e.starts_with("TESSERA_TRUSTED_PROXIES:") && e.contains("not-an-ip"), "{e}");
    let e = Settings::load(None, env(&[]), &flags(&["--allowed-origin", "https://a.example/path"]).values)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--allowed-origin:"), "{e}");
    let (_dir, path) = file("[database]\nurl = \"mysql://db/x\"\n");
    let e = Settings::load(Some(&path), env(&[]), &vec![]).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("unsupported URL scheme"), "{e}");
}

#[test]
fn secrets_are_redacted_in_debug_and_in_the_printed_settings() {
    let (_dir, path) = file("[database]\nurl = \"postgres://tessera:hunter2-db-password@db.internal:5432/tessera\"\n");
    let vars = env(&[("TESSERA_BOOTSTRAP_API_KEY", "operator-key-0123456789abcdef0123456789")]);
    let s = Settings::load(Some(&path), vars, &vec![]).unwrap();
    for shown in [format!("{s:?}"), s.to_redacted_toml()] {
        assert!(!shown.contains("hunter2"), "the database password is shown:\n{shown}");
        assert!(!shown.contains("operator-key-0123"), "the bootstrap key is shown:\n{shown}");
        assert!(shown.contains("tessera:***@db.internal:5432/tessera"), "{shown}");
    }
    assert!(s.to_redacted_toml().contains("api_key = \"***\""), "{}", s.to_redacted_toml());
    // The wiring still gets the real values.
    assert_eq!(s.bootstrap.api_key.as_ref().unwrap().expose(), "operator-key-0123456789abcdef0123456789");
}

#[test]
fn the_printed_settings_read_back_as_the_same_file() {
    let s =
        Settings::load(None, env(&[("TESSERA_LISTEN", "127.0.0.1:7009"), ("TESSERA_GATEWAY_LISTEN", "off")]), &vec![])
            .unwrap();
    let again = Settings::from_toml(&s.to_redacted_toml()).unwrap();
    assert_eq!(again.to_redacted_toml(), s.to_redacted_toml());
}

/// Every setting in the table is a file key the settings print, and the other way round;
/// each has a variable and every flag is one clap knows.
#[test]
fn the_table_of_settings_matches_the_file_keys_and_the_flags() {
    let mut s = Settings::default();
    s.set("database.url", "postgres://u:p@h/db").unwrap();
    s.set("bootstrap.api_key", "k").unwrap();
    for key in ["server.tls_cert", "server.tls_key", "gateway.tls_cert", "gateway.tls_key", "gateway.upstream_ca"] {
        s.set(key, "/etc/tessera/x.pem").unwrap();
    }
    let printed: toml::Table = toml::from_str(&s.to_redacted_toml()).unwrap();
    let mut file_keys: Vec<String> = printed
        .iter()
        .flat_map(|(section, v)| v.as_table().unwrap().keys().map(move |k| format!("{section}.{k}")))
        .collect();
    file_keys.sort();
    let mut table_keys: Vec<String> = SETTINGS.iter().map(|s| s.key.to_owned()).collect();
    table_keys.sort();
    assert_eq!(file_keys, table_keys);

    let cmd = Flags::augment_args(Command::new("serve"));
    for setting in SETTINGS {
        assert!(setting.env.is_some(), "{} has no variable", setting.key);
        if let Some(flag) = setting.flag {
            assert!(cmd.get_arguments().any(|a| a.get_long() == Some(flag)), "--{flag} is not a flag");
        }
    }
}

/// docs/config.md holds the table the code makes; regenerate it with
/// `UPDATE_DOCS=1 cargo nextest run -p tessera-startup` when a setting changes.
#[test]
fn docs_config_md_lists_every_setting_as_the_code_does() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
    let start = doc.find(begin).expect("docs/config.md marks the settings table") + begin.len();
    let stop = doc[start..].find(end).expect("the settings table ends") + start;
    let expected = Settings::docs_table();
    if doc[start..stop] != expected && std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{}{expected}{}", &doc[..start], &doc[stop..])).unwrap();
        return;
    }
    assert!(
        doc[start..stop] == expected,
        "docs/config.md disagrees with the code (UPDATE_DOCS=1 rewrites it); the table should read:\n{expected}"
    );
}

/// The hashing threads' nice value: 10 unless set, from any layer, and only 0 to 19.
#[test]
fn the_password_hashing_nice_value_is_read_from_every_layer_and_checked() {
    assert_eq!(Settings::default().passwords.hashing_nice, 10);
    let (_dir, path) = file("[passwords]\nhashing_nice = 4\n");
    assert_eq!(Settings::load(Some(&path), env(&[]), &vec![]).unwrap().passwords.hashing_nice, 4);
    let vars = env(&[("TESSERA_PASSWORD_HASHING_NICE", "0")]);
    assert_eq!(Settings::load(Some(&path), vars, &vec![]).unwrap().passwords.hashing_nice, 0);
    let typed = flags(&["--password-hashing-nice", "19"]);
    assert_eq!(Settings::load(Some(&path), env(&[]), &typed.values).unwrap().passwords.hashing_nice, 19);
    let e = Settings::load(None, env(&[("TESSERA_PASSWORD_HASHING_NICE", "20")]), &vec![]).unwrap_err().to_string();
    assert!(e.contains("TESSERA_PASSWORD_HASHING_NICE") && e.contains("0 to 19"), "{e}");
    let (_bad, path) = file("[passwords]\nhashing_nice = -5\n");
    let e = Settings::load(Some(&path), env(&[]), &vec![]).unwrap_err().to_string();
    assert!(e.contains("0 to 19"), "{e}");
}
