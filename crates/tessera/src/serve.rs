//! `tessera serve` (settings → build → run until a signal) and `tessera config check`.

use tessera_startup::{Application, Flags, telemetry};

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let settings = flags.settings()?;
    // Held to the end: dropping it writes the log lines still buffered.
    let _log = telemetry::init(&settings.log);
    let admin_email = settings.bootstrap.admin_email.clone();
    let application = Application::build(settings).await?;
    if let Some(key) = application.minted_key() {
        // Printed once on stdout, never logged: it is stored only as a digest.
        println!("\nTessera created the first organization and administrator ({admin_email}).");
        println!("Administrator API key (shown once, store it now):\n\n    {key}\n");
    }
    let stop = application.shutdown_handle();
    let running = application.run_until_stopped();
    tokio::pin!(running);
    tokio::select! {
        served = &mut running => served?,
        () = shutdown_signal() => {
            stop.shutdown();
            running.await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Validates the configuration file, the environment and the flags, and prints the
/// effective settings as TOML, secrets shown as `***`.
pub fn check(flags: Flags) -> anyhow::Result<()> {
    let settings = flags.settings()?;
    print!("{}", settings.to_redacted_toml());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
