//! Every CLI command end to end: the real `tessera` binary against a real `tessera serve`, each
//! effect checked through the API (never only by what the CLI prints).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};

use crate::{ADMIN_KEY, Node, list_status};

const PASSWORD: &str = "correct horse battery staple";

/// A server of its own (SQLite in a temporary directory) and the CLI pointed at it.
struct Cli {
    node: Node,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn start() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(&format!("sqlite://{}", dir.path().join("tessera.db").display())).await;
        Cli { node, _dir: dir }
    }

    fn api(&self) -> &Client {
        &self.node.client
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.node.port)
    }

    /// Runs `tessera <args>` with `key` (None: no credentials), extra environment and input.
    fn run_with(&self, key: Option<&str>, env: &[(&str, &str)], stdin: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.args(args)
            .env("TESSERA_ENDPOINT", self.endpoint())
            .env_remove("TESSERA_API_KEY")
            .env_remove("TESSERA_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = key {
            cmd.env("TESSERA_API_KEY", k);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("tessera runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command as the administrator; it must succeed. Returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_as(ADMIN_KEY, args)
    }

    fn ok_as(&self, key: &str, args: &[&str]) -> String {
        succeeded(args, self.run_with(Some(key), &[], "", args))
    }

    /// Runs a command as the administrator with `--output json` and parses its answer.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["--output", "json"]].concat());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("tessera {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Runs a command that must fail; returns its standard error.
    fn fails(&self, key: Option<&str>, args: &[&str]) -> String {
        let out = self.run_with(key, &[], "", args);
        assert!(!out.status.success(), "tessera {args:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "tessera {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// A user with a password and an API key of their own, made through the API.
async fn user_with_key(api: &Client, email: &str) -> (String, String) {
    let user = api
        .create_user(&wire::UserCreate { email: email.into(), password: Some(PASSWORD.into()), ..Default::default() })
        .await
        .unwrap();
    let key = api.create_api_key(&user.id, &wire::ApiKeyCreate { name: "k".into(), date_expire: None }).await.unwrap();
    (user.id, key.api_key.unwrap())
}

async fn signs_in(api: &Client, email: &str) -> bool {
    let anonymous = Client::new(api.base_url().to_owned(), None);
    let request = wire::SignInRequest { email: email.into(), password: PASSWORD.into(), organization_id: None };
    anonymous.sign_in(&request).await.is_ok()
}

#[tokio::test]
async fn users_create_get_list_disable_enable_and_delete() {
    let cli = Cli::start().await;
    let args =
        ["users", "create", "--email", "lee@example.com", "--first-name", "Lee", "--password", "--output", "json"];
    let out = succeeded(&args, cli.run_with(Some(ADMIN_KEY), &[("TESSERA_PASSWORD", PASSWORD)], "", &args));
    let user = id(&serde_json::from_str(&out).unwrap());
    let stored = cli.api().get_user(&user).await.unwrap();
    assert_eq!((stored.email.as_str(), stored.first_name.as_str()), ("lee@example.com", "Lee"));
    assert!(signs_in(cli.api(), "lee@example.com").await, "the password from TESSERA_PASSWORD was set");

    let table = cli.ok(&["users", "list"]);
    assert!(table.lines().next().unwrap().starts_with("ID"), "a table with a header:\n{table}");
    assert!(table.lines().any(|l| l.contains(&user) && l.contains("lee@example.com")), "{table}");
    let listed = cli.json(&["users", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "the administrator and Lee: {listed}");
    assert_eq!(cli.json(&["users", "get", &user])["email"], "lee@example.com");

    assert_eq!(cli.json(&["users", "disable", &user])["status"], "disabled");
    assert_eq!(cli.api().get_user(&user).await.unwrap().status, "disabled");
    assert!(!signs_in(cli.api(), "lee@example.com").await, "a disabled user cannot sign in");
    cli.ok(&["users", "enable", &user]);
    assert_eq!(cli.api().get_user(&user).await.unwrap().status, "active");
    assert!(signs_in(cli.api(), "lee@example.com").await);

    assert!(cli.ok(&["users", "delete", &user]).contains(&user));
    assert!(cli.api().get_user(&user).await.unwrap_err().is_not_found());
    // Errors are the server's, named, with a failing exit status.
    assert!(cli.fails(Some(ADMIN_KEY), &["users", "get", &user]).contains("404"));
    assert!(cli.fails(None, &["users", "list"]).contains("no credentials"));
    assert!(cli.fails(Some("tessera_ak_wrong"), &["users", "list"]).contains("401"));
    let no_password = cli.fails(Some(ADMIN_KEY), &["users", "create", "--email", "x@example.com", "--password"]);
    assert!(no_password.contains("TESSERA_PASSWORD"), "{no_password}");
    assert!(
        cli.api().list_users(&ListParams::default()).await.unwrap().users.iter().all(|u| u.email != "x@example.com")
    );
}

#[tokio::test]
async fn api_keys_create_list_and_delete() {
    let cli = Cli::start().await;
    let user = cli.api().create_user(&wire::UserCreate { email: "k@example.com".into(), ..Default::default() }).await;
    let user = user.unwrap().id;
    let secret = cli.ok(&["api-keys", "create", "--user", &user, "--name", "ci"]).trim().to_owned();
    assert!(secret.starts_with("tessera_ak_"), "the secret alone on standard output: {secret}");
    // Authenticated (403: no policy yet), not refused as unknown (401).
    assert_eq!(list_status(&cli.api().with_token(secret.clone())).await, 403);
    let listed = cli.json(&["api-keys", "list", "--user", &user]);
    let keys = listed.as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "ci");
    assert!(!listed.to_string().contains(&secret), "a list never shows secrets");
    let key = id(&keys[0]);
    cli.ok(&["api-keys", "delete", "--user", &user, &key]);
    assert_eq!(list_status(&cli.api().with_token(secret.clone())).await, 401, "the deleted key is refused");
    assert!(cli.api().list_api_keys(&user, &ListParams::default()).await.unwrap().api_keys.is_empty());
}

#[tokio::test]
async fn groups_create_members_and_delete() {
    let cli = Cli::start().await;
    let (user, _) = user_with_key(cli.api(), "m@example.com").await;
    let group = id(&cli.json(&["groups", "create", "--name", "ops", "--description", "Operators"]));
    let stored = cli.api().get_group(&group).await.unwrap();
    assert_eq!((stored.display_name.as_str(), stored.description.as_str()), ("ops", "Operators"));
    assert!(cli.ok(&["groups", "list"]).lines().any(|l| l.contains(&group) && l.contains("ops")));

    cli.ok(&["groups", "add-member", &group, &user]);
    let members = cli.api().list_group_members(&group, &ListParams::default()).await.unwrap().members;
    assert_eq!(members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [user.as_str()]);
    assert_eq!(cli.json(&["groups", "members", &group])[0]["email"], "m@example.com");
    cli.ok(&["groups", "remove-member", &group, &user]);
    assert!(cli.api().list_group_members(&group, &ListParams::default()).await.unwrap().members.is_empty());

    cli.ok(&["groups", "delete", &group]);
    assert!(cli.api().get_group(&group).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn policies_create_attach_detach_and_delete() {
    let cli = Cli::start().await;
    let (user, key) = user_with_key(cli.api(), "p@example.com").await;
    let as_user = cli.api().with_token(key.clone());
    let dir = tempfile::tempdir().unwrap();
    let document = serde_json::json!({"Version": "2026-03-20", "Statement": [
        {"Effect": "Allow", "Action": ["iam.user.List"], "Resource": ["*"]}]});
    let file = dir.path().join("list.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let policy = id(&cli.json(&["policies", "create", "--name", "list", "--document", file.to_str().unwrap()]));
    assert_eq!(cli.api().get_policy(&policy).await.unwrap().policy_document["Statement"], document["Statement"]);
    assert!(cli.ok(&["policies", "list"]).lines().any(|l| l.contains(&policy) && l.contains("list")));

    // To a user: the user may now list users; detached: no longer.
    assert_eq!(list_status(&as_user).await, 403);
    cli.ok(&["policies", "attach", &policy, "--user", &user]);
    assert_eq!(list_status(&as_user).await, 200);
    cli.ok(&["policies", "detach", &policy, "--user", &user]);
    assert_eq!(list_status(&as_user).await, 403);

    // To a group the user is in: the same, through the membership.
    let group = wire::GroupInput { display_name: "g".into(), description: String::new() };
    let group = cli.api().create_group(&group).await.unwrap().id;
    cli.api().add_group_member(&group, &user).await.unwrap();
    cli.ok(&["policies", "attach", &policy, "--group", &group]);
    assert_eq!(list_status(&as_user).await, 200);
    cli.ok(&["policies", "detach", &policy, "--group", &group]);
    assert_eq!(list_status(&as_user).await, 403);

    // To a role; and a document from standard input.
    let role = wire::RoleInput { name: "r".into(), role_type: "assumable".into(), ..Default::default() };
    let role = cli.api().create_role(&role).await.unwrap().id;
    let args = ["policies", "create", "--name", "from-stdin", "--document", "-", "--output", "json"];
    let out = succeeded(&args, cli.run_with(Some(ADMIN_KEY), &[], &document.to_string(), &args));
    let second = id(&serde_json::from_str(&out).unwrap());
    cli.ok(&["policies", "attach", &second, "--role", &role]);
    let on_role = cli.api().list_role_policies(&role, &ListParams::default()).await.unwrap().policies;
    assert_eq!(on_role.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [second.as_str()]);
    cli.ok(&["policies", "detach", &second, "--role", &role]);
    assert!(cli.api().list_role_policies(&role, &ListParams::default()).await.unwrap().policies.is_empty());

    let both = cli.fails(Some(ADMIN_KEY), &["policies", "attach", &policy, "--user", &user, "--group", &group]);
    assert!(both.contains("cannot be used with"), "{both}");
    cli.ok(&["policies", "delete", &policy]);
    assert!(cli.api().get_policy(&policy).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn roles_trusts_and_assume() {
    let cli = Cli::start().await;
    let (user, key) = user_with_key(cli.api(), "ops@example.com").await;
    let may_assume = wire::PolicyInput {
        name: "assume".into(),
        description: String::new(),
        policy_document: serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["iam.role.AssumeRole"], "Resource": "*"}]}),
    };
    let may_assume = cli.api().create_policy(&may_assume).await.unwrap();
    cli.api().attach_policy_to_user(&may_assume.id, &user).await.unwrap();
    let role = id(&cli.json(&["roles", "create", "--name", "reader", "--max-session-duration", "1800"]));
    let stored = cli.api().get_role(&role).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.role_type.as_str(), stored.max_session_duration),
        ("reader", "assumable", 1800)
    );
    assert!(cli.ok(&["roles", "list"]).lines().any(|l| l.contains(&role) && l.contains("reader")));
    let list = wire::PolicyInput {
        name: "list".into(),
        description: String::new(),
        policy_document: serde_json::json!({"Statement": [
            {"Effect": "Allow", "Action": ["iam.user.List"], "Resource": "*"}]}),
    };
    let list = cli.api().create_policy(&list).await.unwrap();
    cli.api().attach_policy_to_role(&role, &list.id).await.unwrap();

    let args = ["assume", "--role", &role, "--user", &user];
    assert!(cli.fails(Some(&key), &args).contains("403"), "no trust yet");
    let trust = id(&cli.json(&["trusts", "create", "--role", &role, "--user", &user, "--ip-range", "127.0.0.1/32"]));
    let stored = cli.api().get_trust(&trust).await.unwrap();
    assert_eq!(stored.trusted_user_id.as_deref(), Some(user.as_str()));
    assert_eq!(stored.conditions.ip_address, ["127.0.0.1/32"]);
    assert_eq!(cli.json(&["trusts", "list", "--role", &role])[0]["id"], trust.as_str());
    assert_eq!(cli.json(&["trusts", "list"]).as_array().unwrap().len(), 1);

    let out = cli.ok_as(&key, &[&args[..], &["--duration", "900", "--output", "json"]].concat());
    let session: Value = serde_json::from_str(&out).unwrap();
    let token = session["session_token"].as_str().expect("the token is shown").to_owned();
    assert_eq!(
        list_status(&cli.api().with_token(token.clone())).await,
        200,
        "the role session acts with the role's policy"
    );
    let stored = cli.api().get_assumed_role(&id(&session)).await.unwrap();
    assert_eq!(
        (stored.user_id.as_str(), stored.role_id.as_str(), stored.duration),
        (user.as_str(), role.as_str(), 900)
    );

    cli.ok(&["trusts", "delete", &trust]);
    assert!(cli.api().get_trust(&trust).await.unwrap_err().is_not_found());
    assert!(cli.fails(Some(&key), &args).contains("403"), "the deleted trust allows nothing");
    cli.ok(&["roles", "delete", &role]);
    assert!(cli.api().get_role(&role).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn login_sessions_list_and_terminate() {
    let cli = Cli::start().await;
    let (user, _) = user_with_key(cli.api(), "lee@example.com").await;
    let login = ["login", "--email", "lee@example.com"];
    // The password from the environment, then from standard input.
    let first = succeeded(&login, cli.run_with(None, &[("TESSERA_PASSWORD", PASSWORD)], "", &login)).trim().to_owned();
    let second = succeeded(&login, cli.run_with(None, &[], &format!("{PASSWORD}\n"), &login)).trim().to_owned();
    let mine = cli.api().with_token(first.clone()).current_session().await.unwrap();
    assert_eq!((mine.user_id.as_str(), mine.status.as_str()), (user.as_str(), "Active"));
    let wrong = cli.run_with(None, &[("TESSERA_PASSWORD", "not the password")], "", &login);
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("401"));

    let filter = "user_id_or_email eq 'lee@example.com' and status eq 'Active'";
    let found = cli.json(&["sessions", "list", "--filter", filter, "--orderby", "create_time desc"]);
    let moids: Vec<&str> = found["Results"].as_array().unwrap().iter().map(|s| s["moid"].as_str().unwrap()).collect();
    assert_eq!(moids.len(), 2, "{found}");
    assert!(moids.contains(&mine.moid.as_str()));
    let table = cli.ok(&["sessions", "list", "--filter", filter]);
    assert!(table.lines().any(|l| l.contains(&mine.moid)), "{table}");

    assert!(cli.ok(&["sessions", "terminate", &mine.moid]).contains("Terminated"));
    assert_eq!(cli.api().get_session(&mine.moid).await.unwrap().status, "Terminated");
    assert_eq!(list_status(&cli.api().with_token(first.clone())).await, 401, "the terminated session is refused");
    assert_ne!(list_status(&cli.api().with_token(second.clone())).await, 401, "the other session is untouched");
    assert_eq!(cli.ok(&["sessions", "terminate", "--user", &user]).trim(), "terminated 1 session(s)");
    assert_eq!(list_status(&cli.api().with_token(second.clone())).await, 401);
    assert!(cli.fails(Some(ADMIN_KEY), &["sessions", "terminate"]).contains("moid"));
}

#[tokio::test]
async fn gateway_apply_creates_replaces_and_prunes() {
    let cli = Cli::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.json");
    let file_arg = file.to_str().unwrap();
    let config = |routes: &[&str]| {
        serde_json::json!({
            "services": [{"name": "app", "url": "http://127.0.0.1:9"}],
            "routes": routes.iter().map(|r| serde_json::json!({"name": r, "paths": [format!("/{r}")], "service": {"name": "app"}})).collect::<Vec<_>>(),
        })
    };
    let names = |kind: &'static str| {
        let api = cli.api().clone();
        async move {
            let (_, list) = api.raw(reqwest::Method::GET, &format!("/v2/gateway/{kind}"), None).await.unwrap();
            let mut names: Vec<String> =
                list[kind].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect();
            names.sort();
            names
        }
    };
    std::fs::write(&file, config(&["a", "b"]).to_string()).unwrap();
    let report = cli.json(&["gateway", "apply", "--file", file_arg]);
    let changes: Vec<&str> = report.as_array().unwrap().iter().map(|r| r["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["created"; 3]);
    assert_eq!(names("services").await, ["app"]);
    assert_eq!(names("routes").await, ["a", "b"]);

    // Applied again: replaced in place, same ids.
    let again = cli.json(&["gateway", "apply", "--file", file_arg]);
    assert!(again.as_array().unwrap().iter().all(|r| r["change"] == "replaced"), "{again}");
    assert_eq!(again[0]["id"], report[0]["id"]);

    // Without --prune a route left out stays; with it, it goes.
    std::fs::write(&file, config(&["a"]).to_string()).unwrap();
    cli.ok(&["gateway", "apply", "--file", file_arg]);
    assert_eq!(names("routes").await, ["a", "b"]);
    let pruned = cli.json(&["gateway", "apply", "--file", file_arg, "--prune"]);
    let deleted: Vec<&Value> = pruned.as_array().unwrap().iter().filter(|r| r["change"] == "deleted").collect();
    assert_eq!(deleted.len(), 1, "{pruned}");
    assert_eq!(deleted[0]["name"], "b");
    assert_eq!(names("routes").await, ["a"], "the pruned route is gone from the server");
    assert_eq!(names("services").await, ["app"]);

    std::fs::write(&file, r#"{"routes": [{"paths": ["/x"]}]}"#).unwrap();
    assert!(cli.fails(Some(ADMIN_KEY), &["gateway", "apply", "--file", file_arg]).contains("\"name\" is required"));
}

#[tokio::test]
async fn roles_assign_and_unassign_by_name() {
    let cli = Cli::start().await;
    let (user, key) = user_with_key(cli.api(), "held@example.com").await;
    let as_user = cli.api().with_token(key);
    let role = wire::RoleInput { name: "auditor".into(), role_type: "assignable".into(), ..Default::default() };
    let role = cli.api().create_role(&role).await.unwrap().id;
    let policy = wire::PolicyInput {
        name: "list-users".into(),
        description: String::new(),
        policy_document: serde_json::json!({"Version": "2026-03-20", "Statement": [
            {"Effect": "Allow", "Action": ["iam.user.List"], "Resource": ["*"]}]}),
    };
    let policy = cli.api().create_policy(&policy).await.unwrap().id;
    cli.api().attach_policy_to_role(&role, &policy).await.unwrap();

    // To a user, by the role's name and the user's email: the role's policy is the user's.
    assert_eq!(list_status(&as_user).await, 403);
    let a = cli.json(&["roles", "assign", "auditor", "--user", "held@example.com"]);
    assert_eq!((a["role_id"].as_str(), a["user_id"].as_str()), (Some(role.as_str()), Some(user.as_str())));
    assert_eq!(list_status(&as_user).await, 200);
    cli.ok(&["roles", "unassign", "auditor", "--user", "held@example.com"]);
    assert_eq!(list_status(&as_user).await, 403);

    // To a group by its name.
    let group = wire::GroupInput { display_name: "auditors".into(), description: String::new() };
    let group = cli.api().create_group(&group).await.unwrap().id;
    cli.api().add_group_member(&group, &user).await.unwrap();
    cli.ok(&["roles", "assign", "auditor", "--group", "auditors"]);
    assert_eq!(list_status(&as_user).await, 200);
    cli.ok(&["roles", "unassign", "auditor", "--group", "auditors"]);
    assert_eq!(list_status(&as_user).await, 403);

    // An assumable role cannot be assigned: the CLI says why.
    let assumable = wire::RoleInput { name: "deployer".into(), role_type: "assumable".into(), ..Default::default() };
    cli.api().create_role(&assumable).await.unwrap();
    let refused = cli.fails(Some(ADMIN_KEY), &["roles", "assign", "deployer", "--user", "held@example.com"]);
    assert!(refused.contains("only assignable roles can be assigned"), "{refused}");
}
