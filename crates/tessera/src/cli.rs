//! The CLI commands: thin wrappers over the typed client, printing tables or JSON.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;
use tessera_api_types as wire;
use tessera_client::{Client, ListParams};

#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// The server's root URL.
    #[arg(long, env = "TESSERA_ENDPOINT", default_value = "http://127.0.0.1:8080", global = true)]
    pub endpoint: String,
    /// An API key or session token (prefer the environment variable: command lines are visible).
    #[arg(long, env = "TESSERA_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, default_value = "table", value_parser = ["table", "json"], global = true)]
    pub output: String,
}

#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Users of the organization.
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Roles of the organization.
    Roles {
        #[command(subcommand)]
        action: RolesAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Sign in with email and password; prints the session token (use it as TESSERA_API_KEY).
    ///
    /// The password is read from TESSERA_PASSWORD, else from the first line of standard input.
    Login {
        #[arg(long)]
        email: String,
        /// Only needed when the email exists in several organizations.
        #[arg(long)]
        organization: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Query and terminate sessions (login, assumed-role, gateway).
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Manage the session gateway's services, routes and plugins.
    Gateway {
        #[command(subcommand)]
        action: GatewayAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Assume a role and print the session, with its token (shown once).
    Assume {
        /// The role to assume.
        #[arg(long)]
        role: String,
        /// The user assuming it (defaults to the caller, found by --user-email lookups elsewhere).
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        session_name: String,
        /// Seconds; at most the role's max_session_duration.
        #[arg(long)]
        duration: Option<i64>,
        /// Bind the token to this IP address.
        #[arg(long)]
        ip_address: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionsAction {
    /// Query sessions of every kind with Intersight/OData options.
    List {
        /// e.g. "status eq 'Active' and create_time gt now() sub PT2H"
        #[arg(long)]
        filter: Option<String>,
        /// e.g. "create_time desc"
        #[arg(long)]
        orderby: Option<String>,
        /// At most this many (default 100, max 1000).
        #[arg(long)]
        top: Option<u32>,
        #[arg(long)]
        skip: Option<u64>,
    },
    /// Terminate one session by moid, or every session of a user with --user.
    Terminate {
        /// The session's moid.
        moid: Option<String>,
        /// Terminate all sessions of this user instead.
        #[arg(long, conflicts_with = "moid")]
        user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GatewayAction {
    /// Make the gateway's configuration match a JSON file, by name (Kong decK style):
    /// `{"services": [...], "routes": [...], "plugins": [...]}` where routes name their
    /// service (`"service": {"name": "api"}`) and plugins their route or service the same way;
    /// plugins are matched by `instance_name`. Objects in the file are created or replaced;
    /// with --prune, named objects not in the file are deleted. Applied without a restart.
    Apply {
        /// The configuration file (JSON).
        #[arg(long)]
        file: std::path::PathBuf,
        /// Also delete services, routes and plugins that the file does not name.
        #[arg(long)]
        prune: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersAction {
    /// List users (all pages).
    List,
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RolesAction {
    /// List roles (all pages).
    List,
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    let key = conn.api_key.clone().context("no credentials: set TESSERA_API_KEY or pass --api-key")?;
    Ok(Client::new(conn.endpoint.clone(), Some(key)))
}

fn print(output: &str, value: &Value, columns: &[&str]) {
    if output == "json" {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    let rows: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let widths: Vec<usize> =
        columns.iter().map(|c| rows.iter().map(|r| cell(&r[*c]).len()).max().unwrap_or(0).max(c.len())).collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned()
    };
    println!("{}", line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for r in rows {
        println!("{}", line(columns.iter().map(|c| cell(&r[*c])).collect()));
    }
}

/// One API call that must succeed; the error names what failed and the server's message.
async fn call(c: &Client, method: axum::http::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let text = body.map(Value::to_string);
    let (status, answer) = c.raw(method.clone(), path, text.as_deref()).await?;
    if !status.is_success() {
        let msg = answer["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| answer.to_string());
        anyhow::bail!("{method} {path}: {status}: {msg}");
    }
    Ok(answer)
}

/// `tessera gateway apply`: services, then routes, then plugins, each created or replaced by
/// name; references by name become ids. Prints what changed.
async fn gateway_apply(c: &Client, file: &std::path::Path, prune: bool) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let desired: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let mut report = vec![];
    let mut surplus: Vec<(&str, &str, String, String)> = vec![];
    let mut ids: std::collections::HashMap<(&str, String), String> = Default::default();
    for (kind, plural, key) in
        [("service", "services", "name"), ("route", "routes", "name"), ("plugin", "plugins", "instance_name")]
    {
        let existing = call(c, axum::http::Method::GET, &format!("/v2/gateway/{plural}"), None).await?;
        let existing: Vec<Value> = existing[plural].as_array().cloned().unwrap_or_default();
        let by_name = |n: &str| existing.iter().find(|o| o[key].as_str() == Some(n)).cloned();
        let items = desired[plural].as_array().cloned().unwrap_or_default();
        let mut wanted = std::collections::HashSet::new();
        for (i, mut item) in items.into_iter().enumerate() {
            let name = item[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{plural}[{i}]: \"{key}\" is required to match it with what exists"))?;
            for (field, target) in [("service", "service"), ("route", "route")] {
                if let Some(n) = item[field]["name"].as_str().map(str::to_owned) {
                    let id = ids
                        .get(&(target, n.clone()))
                        .with_context(|| format!("{plural}[{i}].{field}: no {target} named '{n}' in the file"))?;
                    item[field] = serde_json::json!({ "id": id });
                }
            }
            let (verb, answer) = match by_name(&name) {
                Some(old) => {
                    let id = old["id"].as_str().unwrap_or_default().to_owned();
                    let path = format!("/v2/gateway/{plural}/{id}");
                    ("replaced", call(c, axum::http::Method::PUT, &path, Some(&item)).await?)
                }
                None => {
                    ("created", call(c, axum::http::Method::POST, &format!("/v2/gateway/{plural}"), Some(&item)).await?)
                }
            };
            let id = answer[kind]["id"].as_str().unwrap_or_default().to_owned();
            ids.insert((kind, name.clone()), id.clone());
            wanted.insert(name.clone());
            report.push(serde_json::json!({"kind": kind, "name": name, "id": id, "change": verb}));
        }
        if prune {
            for old in &existing {
                if let Some(n) = old[key].as_str()
                    && !wanted.contains(n)
                {
                    let id = old["id"].as_str().unwrap_or_default().to_owned();
                    surplus.push((kind, plural, n.to_owned(), id));
                }
            }
        }
    }
    // Plugins before routes before services: nothing is deleted while something uses it.
    for (kind, plural, name, id) in surplus.into_iter().rev() {
        let path = format!("/v2/gateway/{plural}/{id}");
        let (status, answer) = c.raw(axum::http::Method::DELETE, &path, None).await?;
        // A plugin may already have gone with its route.
        if !status.is_success() && status != axum::http::StatusCode::NOT_FOUND {
            anyhow::bail!("DELETE {path}: {status}: {answer}");
        }
        report.push(serde_json::json!({"kind": kind, "name": name, "id": id, "change": "deleted"}));
    }
    Ok(Value::Array(report))
}

pub async fn run(cmd: CliCommand) -> anyhow::Result<()> {
    match cmd {
        CliCommand::Gateway { action: GatewayAction::Apply { file, prune }, conn } => {
            let c = client(&conn)?;
            let report = gateway_apply(&c, &file, prune).await?;
            print(&conn.output, &report, &["kind", "name", "id", "change"]);
        }
        CliCommand::Users { action, conn } => {
            let c = client(&conn)?;
            match action {
                UsersAction::List => {
                    let mut all = vec![];
                    let mut p = ListParams { per_page: Some(500), cursor: None };
                    loop {
                        let page = c.list_users(&p).await?;
                        all.extend(page.users);
                        if page.meta.links.next.is_empty() {
                            break;
                        }
                        p.cursor = Some(page.meta.links.next);
                    }
                    print(&conn.output, &serde_json::to_value(all)?, &["id", "email", "name", "status"]);
                }
                UsersAction::Create { email, first_name, last_name } => {
                    let u = c.create_user(&wire::UserCreate { email, first_name, last_name, password: None }).await?;
                    print(&conn.output, &serde_json::to_value(u)?, &["id", "email", "name", "status"]);
                }
            }
        }
        CliCommand::Roles { action: RolesAction::List, conn } => {
            let c = client(&conn)?;
            let mut all = vec![];
            let mut p = ListParams { per_page: Some(500), cursor: None };
            loop {
                let page = c.list_roles(&p).await?;
                all.extend(page.roles);
                if page.meta.links.next.is_empty() {
                    break;
                }
                p.cursor = Some(page.meta.links.next);
            }
            print(&conn.output, &serde_json::to_value(all)?, &["id", "name", "role_type", "max_session_duration"]);
        }
        CliCommand::Login { email, organization, conn } => {
            let password = match std::env::var("TESSERA_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    eprint!("password: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let c = Client::new(conn.endpoint.clone(), None);
            let signed = c.sign_in(&wire::SignInRequest { email, password, organization_id: organization }).await?;
            if conn.output == "json" {
                println!("{}", serde_json::to_string_pretty(&signed)?);
            } else {
                eprintln!("signed in; session {} expires {}", signed.session.moid, signed.session.expiration);
                println!("{}", signed.token);
            }
        }
        CliCommand::Sessions { action, conn } => {
            let c = client(&conn)?;
            match action {
                SessionsAction::List { filter, orderby, top, skip } => {
                    let top = top.map(|t| t.to_string());
                    let skip = skip.map(|s| s.to_string());
                    let mut q: Vec<(&str, &str)> = vec![];
                    if let Some(f) = &filter {
                        q.push(("$filter", f));
                    }
                    if let Some(o) = &orderby {
                        q.push(("$orderby", o));
                    }
                    if let Some(t) = &top {
                        q.push(("$top", t));
                    }
                    if let Some(s) = &skip {
                        q.push(("$skip", s));
                    }
                    let res = c.query_sessions(&q).await?;
                    if conn.output == "json" {
                        println!("{}", serde_json::to_string_pretty(&res)?);
                    } else {
                        let rows = serde_json::to_value(res.results.unwrap_or_default())?;
                        print(
                            &conn.output,
                            &rows,
                            &[
                                "moid",
                                "kind",
                                "user_id_or_email",
                                "status",
                                "client_ip_address",
                                "create_time",
                                "expiration",
                            ],
                        );
                        if let Some(n) = res.count {
                            eprintln!("{n} matching");
                        }
                    }
                }
                SessionsAction::Terminate { moid: Some(moid), user: None } => {
                    let s = c.terminate_session(&moid).await?;
                    print(
                        &conn.output,
                        &serde_json::to_value(s)?,
                        &["moid", "kind", "status", "end_reason", "end_time"],
                    );
                }
                SessionsAction::Terminate { user: Some(user), .. } => {
                    let n = c.terminate_user_sessions(&user).await?;
                    println!("terminated {n} session(s)");
                }
                SessionsAction::Terminate { moid: None, user: None } => {
                    anyhow::bail!("name a session moid, or --user USER_ID for all of a user's sessions");
                }
            }
        }
        CliCommand::Assume { role, user, session_name, duration, ip_address, conn } => {
            let c = client(&conn)?;
            let s = c
                .assume_role(&wire::AssumeRequest {
                    user_id: user,
                    role_id: role,
                    session_name,
                    auth_method: Some("api_key".into()),
                    duration,
                    ip_address,
                    context: None,
                })
                .await?;
            print(&conn.output, &serde_json::to_value(s)?, &["id", "session_token", "date_expires", "conditions_met"]);
        }
    }
    Ok(())
}
