//! The `tessera` provider: its configuration (`endpoint`, `api_key`, each with an environment
//! variable to fall back on) and the resources and data sources it serves.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::{Diagnostic, Diagnostics, DynamicDataSource, DynamicResource, Provider};

use crate::api::Api;
use crate::engine::{Data, Doc, Shared};
use crate::schema::{BlockSpec, optional};
use crate::value::{Ty, Val, decode};
use crate::{data_iam_session, resources};

/// Where Tessera listens when neither `endpoint` nor `TESSERA_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

#[derive(Debug, Default)]
pub struct TesseraProvider {
    shared: Arc<Shared>,
}

fn spec() -> BlockSpec {
    BlockSpec::new(
        "Tessera, the session authority: IAM objects, role sessions and the session gateway.",
        vec![
            optional(
                "endpoint",
                Ty::Str,
                "The server's root URL, e.g. `https://tessera.example.com`. Falls back on `TESSERA_ENDPOINT`, then `http://127.0.0.1:8080`.",
            ),
            optional("api_key", Ty::Str, "An API key (`tessera_ak_…`). Falls back on `TESSERA_API_KEY`.").sensitive(),
        ],
    )
}

fn error(diags: &mut Diagnostics, attribute: &'static str, summary: String) {
    diags.add_error(Diagnostic {
        summary: summary.into(),
        detail: "".into(),
        attribute: tf_provider::AttributePath::new(attribute),
    });
}

/// A configured value, else the environment variable, else the default.
fn setting(config: &Val, name: &'static str, env: &str, diags: &mut Diagnostics) -> Option<String> {
    match config.get(name) {
        Val::Unknown => {
            error(diags, name, format!("{name} must be known when the provider is configured"));
            None
        }
        Val::Str(s) if !s.is_empty() => Some(s.clone()),
        _ => std::env::var(env).ok().filter(|v| !v.is_empty()),
    }
}

#[async_trait]
impl Provider for TesseraProvider {
    type Config<'a> = Doc;
    type MetaState<'a> = Doc;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(spec().to_schema())
    }

    async fn configure<'a>(&self, diags: &mut Diagnostics, _terraform_version: String, config: Doc) -> Option<()> {
        let config = match decode(&config.0, &spec().ty()) {
            Ok(c) => c,
            Err(e) => {
                diags.root_error_short(format!("cannot decode the provider configuration: {e}"));
                return None;
            }
        };
        let endpoint =
            setting(&config, "endpoint", "TESSERA_ENDPOINT", diags).unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            error(diags, "endpoint", format!("endpoint must be an http:// or https:// URL, found '{endpoint}'"));
            return Some(());
        }
        let Some(api_key) = setting(&config, "api_key", "TESSERA_API_KEY", diags) else {
            if diags.errors.is_empty() {
                error(
                    diags,
                    "api_key",
                    "api_key is required: set it in the provider block or in TESSERA_API_KEY".into(),
                );
            }
            return Some(());
        };
        self.shared.set(Api::new(&endpoint, &api_key));
        Some(())
    }

    fn get_resources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(resources::all(&self.shared).into_iter().collect())
    }

    fn get_data_sources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicDataSource>>> {
        Some([Data::boxed(data_iam_session::IamSession, Arc::clone(&self.shared))].into_iter().collect())
    }
}
