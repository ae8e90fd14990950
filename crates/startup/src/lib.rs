//! One wiring for a Tessera node: typed [`Settings`] read in layers (defaults < TOML file <
//! environment < flags) and [`Application::build`], which `tessera serve` and testkit's
//! `spawn_app` both call, background tasks included.

mod application;
mod flags;
mod log_format;
mod migrate;
pub mod oidc_keys;
mod settings;
mod table;
pub mod telemetry;
pub mod tls;
mod values;

pub use application::{Application, ShutdownHandle, StartupError, open_store};
pub use flags::Flags;
pub use migrate::{SchemaStatus, migrate, schema_status};
pub use settings::{
    AuditSettings, BootstrapSettings, CONFIG_ENV, ConfigError, DatabaseSettings, DatabaseUrl, GatewaySettings, Listen,
    LogFormat, LogSettings, Network, Origin, Overrides, SETTINGS, SameSite, Secret, ServerSettings, SessionSettings,
    Setting, Settings, Shape,
};
