//! Logs to standard error, as the settings' `[log]` section says.

use crate::settings::{LogFormat, LogSettings};

/// Installs the process's log subscriber. `log.filter` (`TESSERA_LOG`) chooses what Tessera's
/// own code logs. Dependencies log what they are handed: tokio-postgres prints every query's
/// parameters at debug (password hashes, plugin secrets), HTTP stacks print headers (tokens,
/// cookies) at trace. So every target outside Tessera is capped at info, whatever the filter
/// says, even `trace` or `tokio_postgres=trace`.
pub fn init(settings: &LogSettings) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let dependencies_capped = tracing_subscriber::filter::filter_fn(|meta| {
        meta.target().starts_with("tessera") || *meta.level() <= tracing::Level::INFO
    });
    // Colour only on a terminal: a file, a pipe or journald would keep the escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match settings.format {
        LogFormat::Json => builder.json().finish().with(dependencies_capped).init(),
        LogFormat::Text => builder.finish().with(dependencies_capped).init(),
    }
}
