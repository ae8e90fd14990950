//! The command-line layer: one flag per setting that has one, built from [`SETTINGS`], plus
//! `--config`. Only what was typed on the command line counts here; clap shows each flag's
//! variable in `--help`, but the environment is its own layer (see [`Settings::load`]).

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::settings::{CONFIG_ENV, ConfigError, Overrides, SETTINGS, Settings, Shape};

/// `--config` and the flags typed for `tessera serve` / `tessera config check`.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// The TOML file, from `--config` or `TESSERA_CONFIG`.
    pub config: Option<PathBuf>,
    /// Setting key and value, for each flag given.
    pub values: Overrides,
}

impl Flags {
    /// The effective settings: defaults < file < the process environment < these flags.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::load(self.config.as_deref(), |name| std::env::var(name).ok(), &self.values)
    }
}

impl clap::Args for Flags {
    fn augment_args(cmd: Command) -> Command {
        let mut cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .env(CONFIG_ENV)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("A TOML file of settings (see docs/config.md); variables and flags override it"),
        );
        for s in SETTINGS {
            let Some(flag) = s.flag else { continue };
            let mut arg =
                Arg::new(s.key).long(flag).help(format!("{} [default: {}]", plain(s.about), plain(s.default)));
            if let Some(env) = s.env {
                arg = arg.env(env);
            }
            arg = match s.shape {
                Shape::Value => arg.action(ArgAction::Set).value_name(value_name(flag)),
                Shape::List => arg.action(ArgAction::Append).value_delimiter(',').value_name(value_name(flag)),
                Shape::Switch => arg.action(ArgAction::SetTrue),
            };
            if !s.choices.is_empty() {
                arg = arg.value_parser(s.choices.to_vec());
            }
            cmd = cmd.arg(arg);
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for Flags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags { config: m.get_one::<PathBuf>("config").cloned(), values: Vec::new() };
        for s in SETTINGS {
            if s.flag.is_none() || m.value_source(s.key) != Some(ValueSource::CommandLine) {
                continue;
            }
            let value = match s.shape {
                Shape::Switch => m.get_flag(s.key).to_string(),
                _ => m.get_many::<String>(s.key).map(|v| v.cloned().collect::<Vec<_>>().join(",")).unwrap_or_default(),
            };
            flags.values.push((s.key, value));
        }
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// `--data-dir` → `DATA_DIR`.
fn value_name(flag: &str) -> String {
    flag.replace('-', "_").to_ascii_uppercase()
}

/// Markdown without its backticks and links, for `--help`.
fn plain(markdown: &str) -> String {
    let mut out = markdown.replace('`', "");
    while let (Some(open), Some(mid)) = (out.find('['), out.find("](")) {
        let Some(close) = out[mid..].find(')').map(|i| mid + i) else { break };
        if open > mid {
            break;
        }
        out = format!("{}{}{}", &out[..open], &out[open + 1..mid], &out[close + 1..]);
    }
    out
}
