//! `tessera migrate`: apply the schema's pending migrations without serving, or (`--check`)
//! only say where the schema stands.

use clap::Args;
use tessera_startup::Flags;

#[derive(Args)]
pub struct MigrateArgs {
    /// Change nothing: print the schema version and exit with 0 when it is current, 1 when
    /// migrations are pending, 2 when a newer Tessera migrated the database.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub flags: Flags,
}

/// The exit code of a check that found pending migrations.
pub const PENDING: u8 = 1;
/// The exit code of a check (or a migration) that found a newer schema.
pub const NEWER: u8 = 2;

pub async fn run(args: MigrateArgs) -> anyhow::Result<u8> {
    let settings = args.flags.settings()?;
    let location = settings.database.location();
    let status = tessera_startup::schema_status(&location).await?;
    if status.is_newer() {
        eprintln!(
            "error: {location}: the schema is at version {}, newer than this Tessera knows ({}): run the newer Tessera, or restore a backup taken before it migrated",
            status.current, status.known
        );
        return Ok(NEWER);
    }
    if args.check {
        match status.pending() {
            0 => println!("{location}: schema version {} of {}: up to date", status.current, status.known),
            n => println!(
                "{location}: schema version {} of {}: {n} migration{} pending (run `tessera migrate`)",
                status.current,
                status.known,
                if n == 1 { "" } else { "s" }
            ),
        }
        return Ok(if status.pending() == 0 { 0 } else { PENDING });
    }
    let (before, after) = tessera_startup::migrate(&location).await?;
    println!(
        "{location}: applied {} migration{}; schema version {} of {}",
        after.current - before.current.min(after.current),
        if after.current.saturating_sub(before.current) == 1 { "" } else { "s" },
        after.current,
        after.known
    );
    Ok(0)
}
