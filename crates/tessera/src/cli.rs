//! The CLI commands: thin wrappers over the typed client, printing tables or JSON.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;
use tessera_api_types as wire;
use tessera_api_types::gateway as gw;
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
    /// API keys of a user (the secret is shown once, on create).
    ApiKeys {
        #[command(subcommand)]
        action: ApiKeysAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Groups and their members.
    Groups {
        #[command(subcommand)]
        action: GroupsAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Policies, and attaching them to users, groups and roles.
    Policies {
        #[command(subcommand)]
        action: PoliciesAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Role trusts: who may assume a role, and under which conditions.
    Trusts {
        #[command(subcommand)]
        action: TrustsAction,
        #[command(flatten)]
        conn: Connection,
    },
    /// Sign in with email and password; prints the session token (use it as TESSERA_API_KEY).
    ///
    /// The password is read from TESSERA_PASSWORD, else from the first line of standard input.
    Login {
        #[arg(long)]
        email: String,
        /// The organization's id; only needed when the email exists in several.
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
    /// Operator commands, run on the server machine against the database (not the API).
    Admin {
        #[command(subcommand)]
        action: crate::admin::AdminAction,
    },
    /// Assume a role and print the session, with its token (shown once): as a user (with an
    /// API key), or as a workload with its OIDC token (--web-identity-token-file and
    /// --oidc-issuer; no API key is needed).
    Assume {
        /// The role to assume: its id or name (an id with a web identity token, which cannot
        /// look names up).
        #[arg(long)]
        role: String,
        /// The user assuming it: an id or email (the caller needs
        /// iam.assumedrole.CreateForUser to act for another user).
        #[arg(long, required_unless_present = "web_identity_token_file", conflicts_with = "web_identity_token_file")]
        user: Option<String>,
        /// A file holding the workload's OIDC token (a CI job's ID token, a Kubernetes
        /// projected service-account token); read at each run, as the platforms rotate it.
        #[arg(long, requires = "oidc_issuer")]
        web_identity_token_file: Option<std::path::PathBuf>,
        /// The id of the Tessera OIDC issuer that signed the token.
        #[arg(long, requires = "web_identity_token_file")]
        oidc_issuer: Option<String>,
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
        /// Rows to skip (for paging, --orderby a field).
        #[arg(long)]
        skip: Option<u64>,
    },
    /// Terminate one session by moid, or every session of a user with --user.
    Terminate {
        /// The session's moid.
        moid: Option<String>,
        /// Terminate all sessions of this user (id or email) instead.
        #[arg(long, conflicts_with = "moid")]
        user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GatewayAction {
    /// Make the gateway's configuration match a JSON file, by name (Kong decK style):
    /// `{"ca_certificates": [...], "services": [...], "routes": [...], "plugins": [...]}` where
    /// routes name their service (`"service": {"name": "api"}`) and plugins their route or
    /// service the same way; plugins are matched by `instance_name`, CA certificates by
    /// `cert_digest` (or the same `cert`), and services name them by the file's ids. Objects in the file are created or replaced;
    /// with --prune, named objects not in the file are deleted. Applied without a restart.
    /// A Kong decK file (YAML or JSON with `_format_version`) is read too: its consumers
    /// become users with the same ids (docs/gateway.md, "Moving from Kong").
    Apply {
        /// The configuration file (JSON, YAML, or Kong's decK format).
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
    /// Show one user.
    Get {
        /// The user's id or email.
        user: String,
    },
    /// Create a user. A password, if any, is read from TESSERA_PASSWORD with --password.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// Give the user the password in TESSERA_PASSWORD (never on the command line).
        #[arg(long)]
        password: bool,
    },
    /// Disable a user: its sessions end and its API keys stop working.
    Disable {
        /// The user's id or email.
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's id or email.
        user: String,
    },
    /// Delete a user, with its keys and sessions.
    Delete {
        /// The user's id or email.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiKeysAction {
    /// List a user's API keys (without their secrets).
    List {
        /// The user's id or email.
        #[arg(long)]
        user: String,
    },
    /// Create an API key for a user and print its secret (shown once).
    Create {
        /// The user's id or email.
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// RFC 3339; the key does not expire without it.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Delete (revoke) an API key.
    Delete {
        /// The user's id or email.
        #[arg(long)]
        user: String,
        /// The key's id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupsAction {
    /// List groups (all pages).
    List,
    /// Create a group.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a group.
    Delete {
        /// The group's id or name.
        group: String,
    },
    /// List a group's members (all pages).
    Members {
        /// The group's id or name.
        group: String,
    },
    /// Add a user to a group.
    AddMember {
        /// The group's id or name.
        group: String,
        /// The user's id or email.
        user: String,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// The group's id or name.
        group: String,
        /// The user's id or email.
        user: String,
    },
}

/// What a policy is attached to: exactly one of a user, a group or a role.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct PolicyTarget {
    /// A user's id or email.
    #[arg(long)]
    user: Option<String>,
    /// A group's id or name.
    #[arg(long)]
    group: Option<String>,
    /// A role's id or name.
    #[arg(long)]
    role: Option<String>,
}

impl PolicyTarget {
    /// The same target, named by id.
    async fn resolved(self, c: &Client) -> anyhow::Result<PolicyTarget> {
        Ok(PolicyTarget {
            user: resolve_opt(c, Named::User, self.user).await?,
            group: resolve_opt(c, Named::Group, self.group).await?,
            role: resolve_opt(c, Named::Role, self.role).await?,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum PoliciesAction {
    /// List policies (all pages).
    List,
    /// Create a policy from a policy document (a JSON file, or `-` for standard input).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// `{"Version": "...", "Statement": [{"Effect", "Action", "Resource"}]}`.
        #[arg(long)]
        document: std::path::PathBuf,
    },
    /// Delete a policy.
    Delete {
        /// The policy's id or name.
        policy: String,
    },
    /// Attach a policy to a user, a group or a role.
    Attach {
        /// The policy's id or name.
        policy: String,
        #[command(flatten)]
        to: PolicyTarget,
    },
    /// Detach a policy from a user, a group or a role.
    Detach {
        /// The policy's id or name.
        policy: String,
        #[command(flatten)]
        from: PolicyTarget,
    },
}

#[derive(Subcommand, Debug)]
pub enum RolesAction {
    /// List roles (all pages).
    List,
    /// Create a role.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// `assumable` (by trusted users, with `tessera assume`) or `assignable`.
        #[arg(long, default_value = "assumable")]
        role_type: String,
        /// Seconds, 900 to 43 200 (3 600 when omitted).
        #[arg(long)]
        max_session_duration: Option<i64>,
    },
    /// Delete a role (its sessions end).
    Delete {
        /// The role's id or name.
        role: String,
    },
    /// Assign an assignable role to a user or a group: its policies join theirs.
    Assign {
        /// The role's id or name.
        role: String,
        #[command(flatten)]
        to: Assignee,
    },
    /// Take an assigned role back from a user or a group.
    Unassign {
        /// The role's id or name.
        role: String,
        #[command(flatten)]
        from: Assignee,
    },
}

/// Whom a role is assigned to: exactly one of a user or a group.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Assignee {
    /// A user's id or email.
    #[arg(long)]
    user: Option<String>,
    /// A group's id or name.
    #[arg(long)]
    group: Option<String>,
}

impl Assignee {
    /// `users/{id}` or `groups/{id}`, the assignee named by id.
    async fn path(self, c: &Client) -> anyhow::Result<String> {
        Ok(match (self.user, self.group) {
            (Some(u), _) => format!("users/{}", resolve(c, Named::User, &u).await?),
            (None, Some(g)) => format!("groups/{}", resolve(c, Named::Group, &g).await?),
            (None, None) => anyhow::bail!("name a --user or a --group"),
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum TrustsAction {
    /// List trusts (all pages), or only one role's with --role.
    List {
        /// The role's id or name.
        #[arg(long)]
        role: Option<String>,
    },
    /// Let a user, or the members of a group, assume a role.
    Create {
        /// The role's id or name.
        #[arg(long)]
        role: String,
        /// The trusted user's id or email.
        #[arg(long, required_unless_present = "group", conflicts_with = "group")]
        user: Option<String>,
        /// The trusted group's id or name (its members may assume the role).
        #[arg(long)]
        group: Option<String>,
        /// Only from these IP addresses or CIDR blocks (repeat the option for several).
        #[arg(long = "ip-range")]
        ip_ranges: Vec<String>,
        /// RFC 3339; the trust allows nothing after it.
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// Delete a trust: nobody assumes the role through it any more.
    Delete { id: String },
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    let key = conn.api_key.clone().context("no credentials: set TESSERA_API_KEY or pass --api-key")?;
    Ok(Client::new(conn.endpoint.clone(), Some(key)))
}

/// The kinds of object the CLI takes by id, name or email.
#[derive(Debug, Clone, Copy)]
enum Named {
    User,
    Group,
    Policy,
    Role,
}

impl Named {
    fn noun(self) -> &'static str {
        match self {
            Named::User => "user",
            Named::Group => "group",
            Named::Policy => "policy",
            Named::Role => "role",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Named::User => "users",
            Named::Group => "groups",
            Named::Policy => "policies",
            Named::Role => "roles",
        }
    }
}

/// True for the shape of Tessera's ids (a hyphenated UUID); anything else is a name.
fn is_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// The id of the `kind` that `arg` names: an id as given, else the one object whose email
/// (users, any case) or name (groups, policies, roles) is `arg`, found through the list call.
/// An unknown name says so; a name several objects share is refused with their ids.
async fn resolve(c: &Client, kind: Named, arg: &str) -> anyhow::Result<String> {
    if is_id(arg) {
        return Ok(arg.to_owned());
    }
    let candidates: Vec<(String, String)> = match kind {
        Named::User => every_page(|p| async move { c.list_users(&p).await.map(|l| (l.users, l.meta.links.next)) })
            .await?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect(),
        Named::Group => every_page(|p| async move { c.list_groups(&p).await.map(|l| (l.groups, l.meta.links.next)) })
            .await?
            .into_iter()
            .map(|g| (g.id, g.display_name))
            .collect(),
        Named::Policy => {
            every_page(|p| async move { c.list_policies(&p).await.map(|l| (l.policies, l.meta.links.next)) })
                .await?
                .into_iter()
                .map(|p| (p.id, p.name))
                .collect()
        }
        Named::Role => every_page(|p| async move { c.list_roles(&p).await.map(|l| (l.roles, l.meta.links.next)) })
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect(),
    };
    pick(kind, arg, candidates)
}

/// The id among `candidates` (id, name) whose name is `arg`: exactly one, or an error that
/// says there is none or lists the ids of all that match.
fn pick(kind: Named, arg: &str, candidates: Vec<(String, String)>) -> anyhow::Result<String> {
    let matches = |name: &str| match kind {
        Named::User => name.eq_ignore_ascii_case(arg.trim()),
        _ => name == arg,
    };
    let mut found: Vec<String> = candidates.into_iter().filter(|(_, name)| matches(name)).map(|(id, _)| id).collect();
    let (noun, by, or) = match kind {
        Named::User => (kind.noun(), "with the email", "an email"),
        _ => (kind.noun(), "named", "a name"),
    };
    match found.len() {
        0 => anyhow::bail!("no {noun} {by} '{arg}' (pass its id or {or})"),
        1 => Ok(found.remove(0)),
        n => anyhow::bail!("'{arg}' names {n} {}; pass one of their ids: {}", kind.plural(), found.join(", ")),
    }
}

/// [`resolve`] for an optional argument.
async fn resolve_opt(c: &Client, kind: Named, arg: Option<String>) -> anyhow::Result<Option<String>> {
    match arg {
        Some(a) => resolve(c, kind, &a).await.map(Some),
        None => Ok(None),
    }
}

/// Every page of a list call: `page` asks for one page and returns its items and the cursor
/// of the next (empty on the last).
async fn every_page<T, F, Fut>(mut page: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(ListParams) -> Fut,
    Fut: std::future::Future<Output = tessera_client::ClientResult<(Vec<T>, String)>>,
{
    let mut all = vec![];
    let mut p = ListParams { per_page: Some(500), cursor: None };
    loop {
        let (items, next) = page(p.clone()).await?;
        all.extend(items);
        if next.is_empty() {
            return Ok(all);
        }
        p.cursor = Some(next);
    }
}

/// Prints what a command did to one object, for people (`json` prints the object itself).
fn done(output: &str, what: &str, value: Value) {
    if output == "json" {
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        println!("{what}");
    }
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

/// `tessera gateway apply`: services, then routes, then plugins, each created or replaced by
/// name; references by name become ids. Prints what changed.
///
/// A Kong declarative file (decK's, YAML or JSON, with `_format_version`) is read too: its
/// consumers become users with the same ids (created once, left alone when they exist), its
/// nested routes and plugins are flattened, plugins other than `session` are reported as
/// skipped.
async fn gateway_apply(c: &Client, file: &std::path::Path, prune: bool) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut desired =
        crate::kong::parse(&text).with_context(|| format!("{} is not a configuration", file.display()))?;
    let mut report = vec![];
    if crate::kong::is_kong(&desired) {
        let converted = crate::kong::convert(&desired).with_context(|| format!("{} (Kong format)", file.display()))?;
        for consumer in &converted.consumers {
            report.push(kong_consumer(c, consumer).await?);
        }
        report.extend(converted.skipped);
        desired = converted.gateway;
    }
    let mut apply = GatewayApply { c, desired, ids: Default::default(), report, surplus: vec![] };
    apply.kind::<gw::CaCertificate>("ca_certificate", "ca_certificates", "cert_digest", prune).await?;
    apply.kind::<gw::Service>("service", "services", "name", prune).await?;
    apply.kind::<gw::Route>("route", "routes", "name", prune).await?;
    apply.kind::<gw::Plugin>("plugin", "plugins", "instance_name", prune).await?;
    apply.prune().await?;
    Ok(Value::Array(apply.report))
}

/// A Kong consumer as a Tessera user with the consumer's id: created when missing, left as
/// it is when a user with that id exists (so applying the same file again changes nothing).
async fn kong_consumer(c: &Client, consumer: &crate::kong::Consumer) -> anyhow::Result<Value> {
    let id = &consumer.id;
    let (status, _) = c
        .raw(axum::http::Method::GET, &format!("/v2/users/{id}"), None)
        .await
        .with_context(|| format!("GET user {id}"))?;
    let change = if status.is_success() {
        "unchanged"
    } else {
        let body = serde_json::json!({"id": id, "email": consumer.email, "first_name": consumer.first_name});
        let (status, answer) = c
            .raw(axum::http::Method::POST, "/v2/users", Some(&body.to_string()))
            .await
            .with_context(|| format!("POST user {id}"))?;
        if !status.is_success() {
            anyhow::bail!("consumer {id} ({}): {status} {answer}", consumer.email);
        }
        "created"
    };
    Ok(serde_json::json!({"kind": "user", "name": consumer.email, "id": id, "change": change}))
}

/// One `gateway apply` under way: the file, the ids of what it named so far, what changed,
/// and what exists but the file does not name.
struct GatewayApply<'c> {
    c: &'c Client,
    desired: Value,
    ids: std::collections::HashMap<(&'static str, String), String>,
    report: Vec<Value>,
    /// (kind, name, id) of objects the file does not name, in the order met.
    surplus: Vec<(&'static str, String, String)>,
}

impl GatewayApply<'_> {
    /// Creates or replaces every object of one kind the file lists, by its name (`key`).
    async fn kind<T: gw::GatewayObject>(
        &mut self,
        kind: &'static str,
        plural: &str,
        key: &str,
        prune: bool,
    ) -> anyhow::Result<()> {
        let existing = self.c.list_gateway::<T>().await.with_context(|| format!("GET {}", T::PATH))?;
        let items = self.desired[plural].as_array().cloned().unwrap_or_default();
        let mut wanted = std::collections::HashSet::new();
        for (i, mut item) in items.into_iter().enumerate() {
            let file_id = item["id"].as_str().map(str::to_owned);
            let name = match item[key].as_str() {
                Some(n) => n.to_owned(),
                // A CA certificate is known by its digest, which the server computes: one
                // without it in the file is the existing one with the same PEM, or a new one.
                None if kind == "ca_certificate" => existing
                    .iter()
                    .find(|o| {
                        let o = serde_json::to_value(o).unwrap_or_default();
                        o["cert"].as_str().map(str::trim) == item["cert"].as_str().map(str::trim)
                    })
                    .and_then(|o| o.name().map(str::to_owned))
                    .unwrap_or_default(),
                None => anyhow::bail!("{plural}[{i}]: \"{key}\" is required to match it with what exists"),
            };
            let old = existing.iter().find(|o| !name.is_empty() && o.name() == Some(name.as_str()));
            if kind == "ca_certificate"
                && let Some(old) = old
            {
                // Services name it by id: the one it has here, whatever id the file gave it.
                item["id"] = Value::String(old.id().to_owned());
            }
            let request: T::Request = serde_json::from_value(self.resolve(plural, i, item)?)
                .with_context(|| format!("{plural}[{i}] ('{name}')"))?;
            let (change, answer) = match old {
                Some(old) => {
                    let replaced = self.c.replace_gateway::<T>(old.id(), &request).await;
                    ("replaced", replaced.with_context(|| format!("PUT {}/{}", T::PATH, old.id()))?)
                }
                None => (
                    "created",
                    self.c.create_gateway::<T>(&request).await.with_context(|| format!("POST {}", T::PATH))?,
                ),
            };
            let id = answer.id().to_owned();
            let name = answer.name().map(str::to_owned).unwrap_or(name);
            if let Some(file_id) = file_id {
                self.ids.insert((kind, format!("id:{file_id}")), id.clone());
            }
            self.ids.insert((kind, name.clone()), id.clone());
            self.report.push(serde_json::json!({"kind": kind, "name": name, "id": id, "change": change}));
            wanted.insert(name);
        }
        if prune {
            let unnamed = existing.iter().filter_map(|o| o.name().filter(|n| !wanted.contains(*n)).map(|n| (o, n)));
            self.surplus.extend(unnamed.map(|(o, n)| (kind, n.to_owned(), o.id().to_owned())));
        }
        Ok(())
    }

    /// References by name (`"service": {"name": "api"}`) become references by id.
    fn resolve(&self, plural: &str, i: usize, mut item: Value) -> anyhow::Result<Value> {
        for field in ["service", "route"] {
            if let Some(n) = item[field]["name"].as_str().map(str::to_owned) {
                let id = self
                    .ids
                    .get(&(field, n.clone()))
                    .with_context(|| format!("{plural}[{i}].{field}: no {field} named '{n}' in the file"))?;
                item[field] = serde_json::json!({ "id": id });
            }
        }
        // A service's CA certificates by the ids the file gave them, as they are here.
        if let Some(cas) = item.get_mut("ca_certificates").and_then(Value::as_array_mut) {
            for ca in cas {
                if let Some(id) = ca.as_str().and_then(|f| self.ids.get(&("ca_certificate", format!("id:{f}")))) {
                    *ca = Value::String(id.clone());
                }
            }
        }
        Ok(item)
    }

    /// Deletes what the file does not name: plugins before routes before services before CA
    /// certificates, so nothing is deleted while something uses it.
    async fn prune(&mut self) -> anyhow::Result<()> {
        for (kind, name, id) in std::mem::take(&mut self.surplus).into_iter().rev() {
            let deleted = match kind {
                "service" => self.c.delete_gateway::<gw::Service>(&id).await,
                "route" => self.c.delete_gateway::<gw::Route>(&id).await,
                "ca_certificate" => self.c.delete_gateway::<gw::CaCertificate>(&id).await,
                _ => self.c.delete_gateway::<gw::Plugin>(&id).await,
            };
            match deleted {
                // A plugin may already have gone with its route.
                Err(e) if !e.is_not_found() => return Err(e).with_context(|| format!("DELETE {kind} {id}")),
                _ => {}
            }
            self.report.push(serde_json::json!({"kind": kind, "name": name, "id": id, "change": "deleted"}));
        }
        Ok(())
    }
}

pub async fn run(cmd: CliCommand) -> anyhow::Result<()> {
    match cmd {
        CliCommand::Gateway { action: GatewayAction::Apply { file, prune }, conn } => {
            let c = client(&conn)?;
            let report = gateway_apply(&c, &file, prune).await?;
            print(&conn.output, &report, &["kind", "name", "id", "change"]);
        }
        CliCommand::Admin { action } => crate::admin::run(action).await?,
        CliCommand::Users { action, conn } => users(&client(&conn)?, &conn.output, action).await?,
        CliCommand::ApiKeys { action, conn } => api_keys(&client(&conn)?, &conn.output, action).await?,
        CliCommand::Groups { action, conn } => groups(&client(&conn)?, &conn.output, action).await?,
        CliCommand::Policies { action, conn } => policies(&client(&conn)?, &conn.output, action).await?,
        CliCommand::Roles { action, conn } => roles(&client(&conn)?, &conn.output, action).await?,
        CliCommand::Trusts { action, conn } => trusts(&client(&conn)?, &conn.output, action).await?,
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
                    let user = resolve(&c, Named::User, &user).await?;
                    let n = c.terminate_user_sessions(&user).await?;
                    println!("terminated {n} session(s)");
                }
                SessionsAction::Terminate { moid: None, user: None } => {
                    anyhow::bail!("name a session moid, or --user USER for all of a user's sessions");
                }
            }
        }
        CliCommand::Assume {
            role,
            user: None,
            session_name,
            duration,
            ip_address,
            web_identity_token_file: Some(file),
            oidc_issuer: Some(issuer),
            conn,
        } => {
            let token = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the web identity token from {}", file.display()))?;
            let token = token.trim();
            anyhow::ensure!(!token.is_empty(), "{} holds no token", file.display());
            anyhow::ensure!(
                role.len() == 36 && role.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
                "--role must be the role's id with a web identity token (names need an API key to look up)"
            );
            let c = Client::new(conn.endpoint.clone(), Some(token.to_owned()));
            let s = c
                .assume_role(&wire::AssumeRequest {
                    user_id: String::new(),
                    oidc_issuer_id: Some(issuer),
                    role_id: role,
                    session_name,
                    auth_method: Some("oidc".into()),
                    duration,
                    ip_address,
                    context: None,
                    policy: None,
                })
                .await?;
            print(&conn.output, &serde_json::to_value(s)?, &["id", "session_token", "date_expires", "conditions_met"]);
        }
        CliCommand::Assume { role, user, session_name, duration, ip_address, conn, .. } => {
            let user = user.context("--user is needed unless --web-identity-token-file is given")?;
            let c = client(&conn)?;
            let (user_id, role_id) = (resolve(&c, Named::User, &user).await?, resolve(&c, Named::Role, &role).await?);
            let s = c
                .assume_role(&wire::AssumeRequest {
                    user_id,
                    oidc_issuer_id: None,
                    role_id,
                    session_name,
                    auth_method: Some("api_key".into()),
                    duration,
                    ip_address,
                    context: None,
                    policy: None,
                })
                .await?;
            print(&conn.output, &serde_json::to_value(s)?, &["id", "session_token", "date_expires", "conditions_met"]);
        }
    }
    Ok(())
}

const USER_COLUMNS: &[&str] = &["id", "email", "name", "status"];

async fn users(c: &Client, output: &str, action: UsersAction) -> anyhow::Result<()> {
    let status = |status: &str| wire::UserUpdate { status: Some(status.into()), ..Default::default() };
    match action {
        UsersAction::List => {
            let all =
                every_page(|p| async move { c.list_users(&p).await.map(|l| (l.users, l.meta.links.next)) }).await?;
            print(output, &serde_json::to_value(all)?, USER_COLUMNS);
        }
        UsersAction::Get { user } => {
            let id = resolve(c, Named::User, &user).await?;
            print(output, &serde_json::to_value(c.get_user(&id).await?)?, USER_COLUMNS)
        }
        UsersAction::Create { email, first_name, last_name, password } => {
            let password = match password {
                true => Some(
                    std::env::var("TESSERA_PASSWORD")
                        .ok()
                        .filter(|p| !p.is_empty())
                        .context("--password reads the password from TESSERA_PASSWORD, which is not set")?,
                ),
                false => None,
            };
            let u = c.create_user(&wire::UserCreate { email, first_name, last_name, password }).await?;
            print(output, &serde_json::to_value(u)?, USER_COLUMNS);
        }
        UsersAction::Disable { user } => {
            let id = resolve(c, Named::User, &user).await?;
            print(output, &serde_json::to_value(c.update_user(&id, &status("disabled")).await?)?, USER_COLUMNS)
        }
        UsersAction::Enable { user } => {
            let id = resolve(c, Named::User, &user).await?;
            print(output, &serde_json::to_value(c.update_user(&id, &status("active")).await?)?, USER_COLUMNS)
        }
        UsersAction::Delete { user } => {
            let id = resolve(c, Named::User, &user).await?;
            c.delete_user(&id).await?;
            done(output, &format!("deleted user {id}"), serde_json::json!({"deleted": id}));
        }
    }
    Ok(())
}

async fn api_keys(c: &Client, output: &str, action: ApiKeysAction) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["id", "name", "date_created", "date_expire"];
    match action {
        ApiKeysAction::List { user } => {
            let user = &resolve(c, Named::User, &user).await?;
            let all =
                every_page(|p| async move { c.list_api_keys(user, &p).await.map(|l| (l.api_keys, l.meta.links.next)) })
                    .await?;
            print(output, &serde_json::to_value(all)?, COLUMNS);
        }
        ApiKeysAction::Create { user, name, expires } => {
            let user = resolve(c, Named::User, &user).await?;
            let key = c.create_api_key(&user, &wire::ApiKeyCreate { name, date_expire: expires }).await?;
            if output == "json" {
                println!("{}", serde_json::to_string_pretty(&key)?);
            } else {
                // The secret alone on standard output, so scripts can capture it.
                eprintln!("created API key {} (the secret is shown once)", key.id);
                println!("{}", key.api_key.as_deref().unwrap_or_default());
            }
        }
        ApiKeysAction::Delete { user, id } => {
            let user = resolve(c, Named::User, &user).await?;
            c.delete_api_key(&user, &id).await?;
            done(output, &format!("deleted API key {id}"), serde_json::json!({"deleted": id}));
        }
    }
    Ok(())
}

async fn groups(c: &Client, output: &str, action: GroupsAction) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["id", "display_name", "description"];
    match action {
        GroupsAction::List => {
            let all =
                every_page(|p| async move { c.list_groups(&p).await.map(|l| (l.groups, l.meta.links.next)) }).await?;
            print(output, &serde_json::to_value(all)?, COLUMNS);
        }
        GroupsAction::Create { name, description } => {
            let g = c.create_group(&wire::GroupInput { display_name: name, description }).await?;
            print(output, &serde_json::to_value(g)?, COLUMNS);
        }
        GroupsAction::Delete { group } => {
            let id = resolve(c, Named::Group, &group).await?;
            c.delete_group(&id).await?;
            done(output, &format!("deleted group {id}"), serde_json::json!({"deleted": id}));
        }
        GroupsAction::Members { group } => {
            let group = &resolve(c, Named::Group, &group).await?;
            let all =
                every_page(
                    |p| async move { c.list_group_members(group, &p).await.map(|l| (l.members, l.meta.links.next)) },
                )
                .await?;
            print(output, &serde_json::to_value(all)?, USER_COLUMNS);
        }
        GroupsAction::AddMember { group, user } => {
            let (group, user) = (resolve(c, Named::Group, &group).await?, resolve(c, Named::User, &user).await?);
            c.add_group_member(&group, &user).await?;
            done(output, &format!("added {user} to {group}"), serde_json::json!({"group": group, "added": user}));
        }
        GroupsAction::RemoveMember { group, user } => {
            let (group, user) = (resolve(c, Named::Group, &group).await?, resolve(c, Named::User, &user).await?);
            c.remove_group_member(&group, &user).await?;
            let value = serde_json::json!({"group": group, "removed": user});
            done(output, &format!("removed {user} from {group}"), value);
        }
    }
    Ok(())
}

async fn policies(c: &Client, output: &str, action: PoliciesAction) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["id", "name", "description"];
    match action {
        PoliciesAction::List => {
            let all = every_page(|p| async move { c.list_policies(&p).await.map(|l| (l.policies, l.meta.links.next)) })
                .await?;
            print(output, &serde_json::to_value(all)?, COLUMNS);
        }
        PoliciesAction::Create { name, description, document } => {
            let text = if document.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading the policy document from standard input")?
            } else {
                std::fs::read_to_string(&document).with_context(|| format!("reading {}", document.display()))?
            };
            let policy_document: Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", document.display()))?;
            let p = c.create_policy(&wire::PolicyInput { name, description, policy_document }).await?;
            print(output, &serde_json::to_value(p)?, COLUMNS);
        }
        PoliciesAction::Delete { policy } => {
            let id = resolve(c, Named::Policy, &policy).await?;
            c.delete_policy(&id).await?;
            done(output, &format!("deleted policy {id}"), serde_json::json!({"deleted": id}));
        }
        PoliciesAction::Attach { policy, to } => {
            let policy = resolve(c, Named::Policy, &policy).await?;
            let to = to.resolved(c).await?;
            let target = match to {
                PolicyTarget { user: Some(u), .. } => c.attach_policy_to_user(&policy, &u).await.map(|_| u),
                PolicyTarget { group: Some(g), .. } => c.attach_policy_to_group(&policy, &g).await.map(|_| g),
                PolicyTarget { role: Some(r), .. } => c.attach_policy_to_role(&r, &policy).await.map(|_| r),
                _ => anyhow::bail!("name a --user, a --group or a --role"),
            }?;
            let value = serde_json::json!({"policy": policy, "attached_to": target});
            done(output, &format!("attached {policy} to {target}"), value);
        }
        PoliciesAction::Detach { policy, from } => {
            let policy = resolve(c, Named::Policy, &policy).await?;
            let from = from.resolved(c).await?;
            let target = match from {
                PolicyTarget { user: Some(u), .. } => c.detach_policy_from_user(&policy, &u).await.map(|_| u),
                PolicyTarget { group: Some(g), .. } => c.detach_policy_from_group(&policy, &g).await.map(|_| g),
                PolicyTarget { role: Some(r), .. } => c.detach_policy_from_role(&r, &policy).await.map(|_| r),
                _ => anyhow::bail!("name a --user, a --group or a --role"),
            }?;
            let value = serde_json::json!({"policy": policy, "detached_from": target});
            done(output, &format!("detached {policy} from {target}"), value);
        }
    }
    Ok(())
}

async fn roles(c: &Client, output: &str, action: RolesAction) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["id", "name", "role_type", "max_session_duration"];
    match action {
        RolesAction::List => {
            let all =
                every_page(|p| async move { c.list_roles(&p).await.map(|l| (l.roles, l.meta.links.next)) }).await?;
            print(output, &serde_json::to_value(all)?, COLUMNS);
        }
        RolesAction::Create { name, description, role_type, max_session_duration } => {
            let r = c.create_role(&wire::RoleInput { name, description, role_type, max_session_duration }).await?;
            print(output, &serde_json::to_value(r)?, COLUMNS);
        }
        RolesAction::Delete { role } => {
            let id = resolve(c, Named::Role, &role).await?;
            c.delete_role(&id).await?;
            done(output, &format!("deleted role {id}"), serde_json::json!({"deleted": id}));
        }
        RolesAction::Assign { role, to } => {
            let id = resolve(c, Named::Role, &role).await?;
            let a = c.assign_role(&id, &to.path(c).await?).await?;
            print(output, &serde_json::to_value(a)?, &["role_id", "role_name", "user_id", "group_id", "date_assigned"]);
        }
        RolesAction::Unassign { role, from } => {
            let id = resolve(c, Named::Role, &role).await?;
            c.unassign_role(&id, &from.path(c).await?).await?;
            done(output, &format!("unassigned role {id}"), serde_json::json!({"unassigned": id}));
        }
    }
    Ok(())
}

async fn trusts(c: &Client, output: &str, action: TrustsAction) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["id", "role_id", "trusted_user_id", "trusted_group_id", "valid_until"];
    match action {
        TrustsAction::List { role } => {
            let role = resolve_opt(c, Named::Role, role).await?;
            let role = role.as_deref();
            let all = every_page(|p| async move {
                let list = match role {
                    Some(r) => c.list_trusts_by_role(r, &p).await,
                    None => c.list_trusts(&p).await,
                };
                list.map(|l| (l.role_trusts, l.meta.links.next))
            })
            .await?;
            print(output, &serde_json::to_value(all)?, COLUMNS);
        }
        TrustsAction::Create { role, user, group, ip_ranges, valid_until } => {
            let role = resolve(c, Named::Role, &role).await?;
            let user = resolve_opt(c, Named::User, user).await?;
            let group = resolve_opt(c, Named::Group, group).await?;
            let conditions =
                (!ip_ranges.is_empty()).then(|| wire::Conditions { ip_address: ip_ranges, ..Default::default() });
            let t = c
                .create_trust(&wire::TrustInput {
                    role_id: role,
                    trusted_user_id: user,
                    trusted_group_id: group,
                    conditions,
                    valid_until,
                    ..Default::default()
                })
                .await?;
            print(output, &serde_json::to_value(t)?, COLUMNS);
        }
        TrustsAction::Delete { id } => {
            c.delete_trust(&id).await?;
            done(output, &format!("deleted trust {id}"), serde_json::json!({"deleted": id}));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(id, name)| (id.to_string(), name.to_string())).collect()
    }

    #[test]
    fn a_name_picks_its_one_object_or_says_why_not() {
        let groups = candidates(&[("g1", "ops"), ("g2", "dev"), ("g3", "ops")]);
        assert_eq!(pick(Named::Group, "dev", groups.clone()).unwrap(), "g2");
        let shared = pick(Named::Group, "ops", groups.clone()).unwrap_err().to_string();
        assert_eq!(shared, "'ops' names 2 groups; pass one of their ids: g1, g3");
        let unknown = pick(Named::Group, "Dev", groups).unwrap_err().to_string();
        assert_eq!(unknown, "no group named 'Dev' (pass its id or a name)");
        let users = candidates(&[("u1", "ann@example.com")]);
        assert_eq!(pick(Named::User, "Ann@Example.com", users.clone()).unwrap(), "u1", "emails in any case");
        let unknown = pick(Named::User, "bob@example.com", users).unwrap_err().to_string();
        assert_eq!(unknown, "no user with the email 'bob@example.com' (pass its id or an email)");
        let policies = candidates(&[("p1", "x"), ("p2", "x")]);
        assert!(pick(Named::Policy, "x", policies).unwrap_err().to_string().contains("2 policies"));
    }

    #[test]
    fn ids_are_told_from_names_by_their_shape() {
        assert!(is_id("0b1e2c3d-4e5f-6789-abcd-ef0123456789"));
        assert!(!is_id("reader"));
        assert!(!is_id("ann@example.com"));
        assert!(!is_id("0b1e2c3d-4e5f-6789-abcd-ef012345678g"));
    }
}
