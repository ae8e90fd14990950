//! `tessera backup --to FILE`: a consistent copy of the server's database, taken while it
//! serves. SQLite: `VACUUM INTO` on a read-only connection (one read transaction, so the copy
//! is a single moment; writers go on meanwhile in WAL mode). PostgreSQL: `pg_dump` in its
//! custom format, for `pg_restore`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::Args;
use tessera_startup::{DatabaseUrl, Flags};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where the copy goes; must not exist yet. SQLite: a database file, ready to serve from.
    /// PostgreSQL: a `pg_dump --format=custom` archive, for `pg_restore`.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// The server's database: an SQLite file (a path or sqlite:// URL) or a postgres:// URL.
    /// Defaults to what `tessera serve` would use (its variables and --config file).
    #[arg(long, value_name = "URL_OR_PATH")]
    database: Option<String>,
    /// The configuration file `tessera serve` reads, to find its database.
    #[arg(long, env = tessera_startup::CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: BackupArgs) -> anyhow::Result<()> {
    let values = args.database.map(|d| vec![("database.url", d)]).unwrap_or_default();
    let settings = Flags { config: args.config, values }.settings()?;
    let location = settings.database.location();
    ensure!(!args.to.exists(), "{} exists already; a backup never overwrites", args.to.display());
    match &location {
        DatabaseUrl::Sqlite(path) => sqlite(path, &args.to),
        DatabaseUrl::Postgres(url) => postgres(url.expose(), &args.to),
    }
    .with_context(|| format!("backing up {location} to {}", args.to.display()))?;
    eprintln!("backed up {location} to {}", args.to.display());
    Ok(())
}

fn sqlite(path: &Path, to: &Path) -> anyhow::Result<()> {
    // Opening a missing file would back up an empty database.
    ensure!(path.exists(), "no database at {}: pass the server's --database", path.display());
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // The writer holds its lock only for a commit; wait for it rather than fail.
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = to.to_str().context("the target path is not UTF-8")?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

fn postgres(url: &str, to: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(to)
        .arg(url)
        .status()
        .context("running pg_dump (install PostgreSQL's client tools)")?;
    if !status.success() {
        let _ = std::fs::remove_file(to);
        bail!("pg_dump failed ({status})");
    }
    Ok(())
}
