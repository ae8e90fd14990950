//! Every `--help` text is there and says what the command really accepts: the database flags
//! name both backends, commands that take a user, group, policy or role say an id or a name
//! will do.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).arg("--help").output().expect("tessera runs");
    assert!(out.status.success(), "tessera {args:?} --help failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `tessera <args> --help` lists, from its `Commands:` section.
fn subcommands(args: &[&str]) -> Vec<String> {
    help(args)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_has_help() {
    let top = subcommands(&[]);
    assert!(top.len() >= 10, "{top:?}");
    for command in &top {
        let text = help(&[command]);
        assert!(text.lines().next().is_some_and(|l| !l.trim().is_empty()), "`tessera {command}` says what it is");
        for sub in subcommands(&[command]) {
            help(&[command, &sub]);
        }
    }
}

#[test]
fn database_flags_name_sqlite_and_postgres() {
    for args in [&["serve"][..], &["config", "check"], &["admin", "create-key"]] {
        let text = help(args);
        let database = text.split("      --database ").nth(1).unwrap_or_else(|| panic!("{args:?} has --database"));
        let database = &database[..database.find("\n      --").unwrap_or(database.len())];
        assert!(database.contains("postgres://"), "tessera {args:?} --database: {database}");
        assert!(database.to_lowercase().contains("sqlite"), "tessera {args:?} --database: {database}");
    }
}

#[test]
fn commands_taking_objects_say_a_name_will_do() {
    for (args, says) in [
        (&["assume"][..], ["The role to assume: its id or name", "an id or email"]),
        (&["policies", "attach"], ["The policy's id or name", "A role's id or name"]),
        (&["trusts", "create"], ["The role's id or name", "The trusted user's id or email"]),
        (&["groups", "add-member"], ["The group's id or name", "The user's id or email"]),
    ] {
        let text = help(args);
        for s in says {
            assert!(text.contains(s), "tessera {args:?} --help should say {s:?}:\n{text}");
        }
    }
}
