//! The CLI takes names where people have them: a user's email, a group's, policy's or role's
//! name, wherever a command takes an id; resolved through the API's list calls. An unknown
//! name says so (a name several objects share is refused with their ids: see the unit test
//! in src/cli.rs, since the API keeps names unique). Each effect is checked through the API,
//! never only by what the CLI prints.

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};

use crate::{ADMIN_KEY, Node};

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

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_ENDPOINT", format!("http://127.0.0.1:{}", self.node.port))
            .env("TESSERA_API_KEY", ADMIN_KEY)
            .stdin(Stdio::null())
            .output()
            .expect("tessera runs")
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(out.status.success(), "tessera {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[args, &["--output", "json"]].concat());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("tessera {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Runs a command that must fail; returns its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "tessera {args:?} succeeded:\n{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn ids<T>(items: Vec<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}

/// Ann, the group `ops`, the policy `readers` and the role `reader`, made through the API.
async fn fixtures(api: &Client) -> (String, String, String, String) {
    let ann =
        api.create_user(&wire::UserCreate { email: "ann@example.com".into(), ..Default::default() }).await.unwrap();
    let ops =
        api.create_group(&wire::GroupInput { display_name: "ops".into(), description: String::new() }).await.unwrap();
    let readers = api
        .create_policy(&wire::PolicyInput {
            name: "readers".into(),
            description: String::new(),
            policy_document: serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "iam.user.List", "Resource": "*"}]}),
        })
        .await
        .unwrap();
    let reader = api
        .create_role(&wire::RoleInput {
            name: "reader".into(),
            description: String::new(),
            role_type: "assumable".into(),
            max_session_duration: None,
        })
        .await
        .unwrap();
    (ann.id, ops.id, readers.id, reader.id)
}

#[tokio::test]
async fn every_command_takes_names_and_emails_for_ids() {
    let cli = Cli::start().await;
    let api = cli.api();
    let all = ListParams::default();
    let (ann, ops, readers, reader) = fixtures(api).await;

    assert_eq!(cli.json(&["users", "get", "Ann@Example.com"])["id"], ann.as_str(), "emails in any case");
    cli.ok(&["policies", "attach", "readers", "--role", "reader"]);
    assert_eq!(ids(api.list_role_policies(&reader, &all).await.unwrap().policies, |p| &p.id), [readers.as_str()]);
    cli.ok(&["policies", "attach", "readers", "--user", "ann@example.com"]);
    assert_eq!(ids(api.list_user_policies(&ann, &all).await.unwrap().policies, |p| &p.id), [readers.as_str()]);
    cli.ok(&["policies", "attach", "readers", "--group", "ops"]);
    assert_eq!(ids(api.list_policy_groups(&readers, &all).await.unwrap().groups, |g| &g.id), [ops.as_str()]);
    cli.ok(&["groups", "add-member", "ops", "ann@example.com"]);
    assert_eq!(ids(api.list_group_members(&ops, &all).await.unwrap().members, |u| &u.id), [ann.as_str()]);
    assert_eq!(cli.json(&["groups", "members", "ops"])[0]["id"], ann.as_str());

    let by_user = cli.json(&["trusts", "create", "--role", "reader", "--user", "ann@example.com"]);
    let by_group = cli.json(&["trusts", "create", "--role", "reader", "--group", "ops"]);
    let stored = api.get_trust(by_user["id"].as_str().unwrap()).await.unwrap();
    assert_eq!((stored.role_id.as_str(), stored.trusted_user_id.as_deref()), (reader.as_str(), Some(ann.as_str())));
    let stored = api.get_trust(by_group["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(stored.trusted_group_id.as_deref(), Some(ops.as_str()));
    assert_eq!(cli.json(&["trusts", "list", "--role", "reader"]).as_array().unwrap().len(), 2);

    let session = cli.json(&["assume", "--role", "reader", "--user", "ann@example.com"]);
    let stored = api.get_assumed_role(session["id"].as_str().unwrap()).await.unwrap();
    assert_eq!((stored.user_id.as_str(), stored.role_id.as_str()), (ann.as_str(), reader.as_str()));

    cli.ok(&["api-keys", "create", "--user", "ann@example.com", "--name", "k"]);
    let keys = api.list_api_keys(&ann, &all).await.unwrap().api_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(cli.json(&["api-keys", "list", "--user", "ann@example.com"])[0]["id"], keys[0].id.as_str());
    cli.ok(&["api-keys", "delete", "--user", "ann@example.com", &keys[0].id]);
    assert!(api.list_api_keys(&ann, &all).await.unwrap().api_keys.is_empty());

    assert_eq!(cli.ok(&["sessions", "terminate", "--user", "ann@example.com"]).trim(), "terminated 1 session(s)");
    assert_ne!(api.get_assumed_role(&stored.id).await.unwrap().status, "Active");
    cli.ok(&["users", "disable", "ann@example.com"]);
    assert_eq!(api.get_user(&ann).await.unwrap().status, "disabled");
    cli.ok(&["users", "enable", "ann@example.com"]);
    assert_eq!(api.get_user(&ann).await.unwrap().status, "active");

    cli.ok(&["groups", "remove-member", "ops", "ann@example.com"]);
    assert!(api.list_group_members(&ops, &all).await.unwrap().members.is_empty());
    cli.ok(&["policies", "detach", "readers", "--role", "reader"]);
    cli.ok(&["policies", "detach", "readers", "--user", "ann@example.com"]);
    cli.ok(&["policies", "detach", "readers", "--group", "ops"]);
    assert!(api.list_role_policies(&reader, &all).await.unwrap().policies.is_empty());
    assert!(api.list_user_policies(&ann, &all).await.unwrap().policies.is_empty());
    cli.ok(&["roles", "delete", "reader"]);
    assert!(api.get_role(&reader).await.unwrap_err().is_not_found());
    cli.ok(&["policies", "delete", "readers"]);
    assert!(api.get_policy(&readers).await.unwrap_err().is_not_found());
    cli.ok(&["groups", "delete", "ops"]);
    assert!(api.get_group(&ops).await.unwrap_err().is_not_found());
    cli.ok(&["users", "delete", "ann@example.com"]);
    assert!(api.get_user(&ann).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn ids_still_work() {
    let cli = Cli::start().await;
    let (ann, _, readers, reader) = fixtures(cli.api()).await;
    cli.ok(&["policies", "attach", &readers, "--role", &reader]);
    cli.ok(&["trusts", "create", "--role", &reader, "--user", &ann]);
    let session = cli.json(&["assume", "--role", &reader, "--user", &ann]);
    assert_eq!(session["user_id"], ann.as_str());
}

#[tokio::test]
async fn an_unknown_name_says_so() {
    let cli = Cli::start().await;
    fixtures(cli.api()).await;
    let err = cli.fails(&["assume", "--role", "deployer", "--user", "ann@example.com"]);
    assert!(err.contains("no role named 'deployer'"), "{err}");
    let err = cli.fails(&["assume", "--role", "reader", "--user", "bob@example.com"]);
    assert!(err.contains("no user with the email 'bob@example.com'"), "{err}");
    let err = cli.fails(&["policies", "delete", "writers"]);
    assert!(err.contains("no policy named 'writers'"), "{err}");

    let err = cli.fails(&["groups", "members", "admins"]);
    assert!(err.contains("no group named 'admins'"), "{err}");
    assert!(cli.api().list_roles(&ListParams::default()).await.unwrap().roles.len() == 1, "nothing was created");
}
