//! `tessera admin …`: operator commands run on the server machine against the database
//! itself rather than through the API, for when no working key is left.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use tessera_startup::{DatabaseUrl, Flags};

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Mint a new API key for a user straight in the database, and print it once.
    ///
    /// The way back when the administrator's key is lost: run it on the server machine
    /// against the database the server uses (the server may keep running). The key is stored
    /// as a digest like every key, acts with the user's own permissions, and an audit event
    /// (actor_kind system) records that the operator made it.
    CreateKey {
        /// The server's database: an SQLite file (a path or sqlite:// URL) or a
        /// postgres://user:password@host:5432/db URL. Defaults to what `tessera serve` would
        /// use (its variables and --config file).
        #[arg(long, value_name = "URL_OR_PATH")]
        database: Option<String>,
        /// The configuration file `tessera serve` reads, to find its database.
        #[arg(long, env = tessera_startup::CONFIG_ENV, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The user the key belongs to, e.g. the administrator (admin@tessera.local by default).
        #[arg(long)]
        email: String,
        /// The organization's id; only needed when the email is a user of several.
        #[arg(long)]
        organization: Option<String>,
        /// A name for the key, shown in `tessera api-keys list`.
        #[arg(long, default_value = "recovery")]
        name: String,
    },
}

pub async fn run(action: AdminAction) -> anyhow::Result<()> {
    match action {
        AdminAction::CreateKey { database, config, email, organization, name } => {
            let values = database.map(|d| vec![("database.url", d)]).unwrap_or_default();
            let settings = Flags { config, values }.settings()?;
            let location = settings.database.location();
            if let DatabaseUrl::Sqlite(path) = &location {
                // Opening a missing file would create an empty database with no users.
                anyhow::ensure!(path.exists(), "no database at {}: pass the server's --database", path.display());
            }
            let store = tessera_startup::open_store(&location).await?;
            let app = tessera_app::App::new(store, Arc::new(tessera_app::SystemClock), Box::new(rand::rngs::OsRng));
            let created = app
                .create_operator_key(tessera_app::System::OPERATOR, &email, organization.as_deref(), name)
                .await
                .with_context(|| format!("creating a key in {location}"))?;
            // The secret alone on standard output, so scripts can capture it.
            eprintln!(
                "created API key {} for {} (user {}, organization {}); the secret is shown once:",
                created.key.id, email, created.key.user_id, created.key.org_id
            );
            println!("{}", created.secret);
        }
    }
    Ok(())
}
