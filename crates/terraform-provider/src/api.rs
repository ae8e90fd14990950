//! The provider's view of Tessera's API: the typed client, a JSON call for the gateway's Kong
//! bodies, paging, and errors that read well in Terraform's output.

use std::future::Future;

use reqwest::Method;
use serde_json::Value as Json;
use tessera_api_types::Meta;
use tessera_client::{Client, ClientError, ListParams};

/// An error for Terraform's output: a one-line summary and an optional detail.
#[derive(Debug, Clone)]
pub struct Error {
    pub summary: String,
    pub detail: String,
    /// The attribute the error is about, when known.
    pub attribute: Option<String>,
    /// The object does not exist (HTTP 404).
    pub not_found: bool,
}

impl Error {
    pub fn new(summary: impl Into<String>) -> Self {
        Self { summary: summary.into(), detail: String::new(), attribute: None, not_found: false }
    }
    pub fn at(mut self, attribute: impl Into<String>) -> Self {
        self.attribute = Some(attribute.into());
        self
    }
    /// Prefixes the summary with what was being done: `creating role: 400: ...`.
    pub fn ctx(mut self, doing: &str) -> Self {
        self.summary = format!("{doing}: {}", self.summary);
        self
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        let not_found = e.is_not_found();
        match e {
            ClientError::Api { status, body } => Error {
                summary: format!("{} ({})", body.error.message, status.as_u16()),
                detail: body.error.field.as_ref().map(|f| format!("field: {f}")).unwrap_or_default(),
                attribute: None,
                not_found,
            },
            other => Error { summary: other.to_string(), detail: String::new(), attribute: None, not_found },
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Ok(None)` for a 404, the value otherwise.
pub fn found<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete that finds nothing has nothing left to do.
pub fn gone_is_fine(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.not_found => Ok(()),
        other => other,
    }
}

/// The API client the provider was configured with.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: Client,
}

impl Api {
    pub fn new(endpoint: &str, api_key: &str) -> Self {
        Self { client: Client::new(endpoint, Some(api_key.to_owned())) }
    }

    /// Any call with a JSON body, answering the JSON body; non-2xx answers are errors.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Json>) -> Result<Json> {
        let text = body.map(Json::to_string);
        let (status, value) = self.client.raw(method, path, text.as_deref()).await?;
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"].as_str().map_or_else(|| value.to_string(), str::to_owned);
        let field = value["error"]["field"].as_str().map(|f| format!("field: {f}")).unwrap_or_default();
        Err(Error {
            summary: format!("{message} ({})", status.as_u16()),
            detail: field,
            attribute: None,
            not_found: status == reqwest::StatusCode::NOT_FOUND,
        })
    }
}

/// Every item of a paged list: follows `meta.links.next` to the end.
pub async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(ListParams) -> Fut,
    Fut: Future<Output = std::result::Result<(Vec<T>, Meta), ClientError>>,
{
    let mut out = vec![];
    let mut cursor = None;
    loop {
        let (items, meta) = page(ListParams { per_page: Some(500), cursor: cursor.take() }).await?;
        out.extend(items);
        if meta.links.next.is_empty() {
            return Ok(out);
        }
        cursor = Some(meta.links.next);
    }
}
