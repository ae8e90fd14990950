//! The gateway's objects on the wire (`/v2/gateway/{services,routes,plugins}`), shaped like
//! Kong's Admin API.
//!
//! Answers ([`Service`], [`Route`], [`Plugin`]) carry every field, `null` included, as the
//! server has them; a plugin's `config.secret` always reads as `null` (it is write-only).
//! Requests ([`ServiceRequest`], [`RouteRequest`], [`PluginRequest`]) carry only what the
//! caller sets: a field left `None` is not sent, and the server applies Kong's default.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Meta;

/// A reference to another object by id, as Kong writes it: `{"id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    pub id: String,
}

impl Ref {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// An upstream, as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub retries: u32,
    /// Milliseconds.
    pub connect_timeout: u64,
    pub write_timeout: u64,
    pub read_timeout: u64,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which requests go to a service, as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: String,
    pub name: Option<String>,
    pub paths: Vec<String>,
    pub hosts: Vec<String>,
    pub methods: Vec<String>,
    pub protocols: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub service: Option<Ref>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A plugin instance (only `session` exists), as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plugin {
    pub id: String,
    pub name: String,
    pub instance_name: Option<String>,
    pub config: SessionPluginConfig,
    pub enabled: bool,
    pub protocols: Vec<String>,
    pub route: Option<Ref>,
    pub service: Option<Ref>,
    pub consumer: Option<Ref>,
    pub tags: Vec<String>,
    /// Kong's plugin ordering, stored as given (the gateway runs one plugin).
    pub ordering: Option<Value>,
    /// Kong's partials, stored as given.
    pub partials: Option<Vec<Value>>,
    pub workspace: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The `session` plugin's settings as answered: every field of Kong 3.12's schema and
/// Tessera's `unauthenticated`. Timeouts are seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionPluginConfig {
    /// Always `null` in answers: the secret keys every cookie and is never read back.
    pub secret: Option<String>,
    pub storage: String,
    pub audience: String,
    pub idling_timeout: f64,
    pub rolling_timeout: f64,
    pub absolute_timeout: f64,
    pub stale_ttl: f64,
    pub cookie_name: String,
    pub cookie_path: String,
    pub cookie_domain: Option<String>,
    pub cookie_same_site: String,
    pub cookie_http_only: bool,
    pub cookie_secure: bool,
    pub remember: bool,
    pub remember_cookie_name: String,
    pub remember_rolling_timeout: f64,
    pub remember_absolute_timeout: f64,
    pub request_headers: Option<Vec<String>>,
    pub response_headers: Option<Vec<String>>,
    pub logout_methods: Vec<String>,
    pub logout_query_arg: String,
    pub logout_post_arg: String,
    pub read_body_for_logout: bool,
    pub hash_subject: bool,
    pub store_metadata: bool,
    pub bind: Option<Vec<String>>,
    /// `reject`, `redirect` or `pass`.
    pub unauthenticated: String,
}

/// Creates or replaces a service: `{"name", "url"}`, or the parts of the url.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Shorthand for protocol, host, port and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// Creates or replaces a route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_path: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_host: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// Creates or replaces a plugin; `name` is `session`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<SessionPluginConfigRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partials: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// The `session` plugin's settings to set; the ones left `None` take Kong's defaults (on a
/// replace, a missing `secret` keeps the stored one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPluginConfigRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idling_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_ttl: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_same_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_http_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_cookie_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_rolling_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_absolute_timeout: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_query_arg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_post_arg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_body_for_logout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_subject: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unauthenticated: Option<String>,
}

/// One of the three kinds of gateway object: where it lives, what creates it, and how one
/// object and a list of them are wrapped in answers.
pub trait GatewayObject: Serialize + DeserializeOwned + Sized {
    /// What a create or replace sends.
    type Request: Serialize + DeserializeOwned;
    /// `{"service": {...}}`.
    type One: Serialize + DeserializeOwned + From<Self> + Into<Self>;
    /// `{"services": [...], "meta": {...}}`.
    type List: Serialize + DeserializeOwned + From<Vec<Self>> + Into<Vec<Self>>;
    /// `/v2/gateway/services`.
    const PATH: &'static str;
}

macro_rules! envelopes {
    ($object:ident, $request:ident, $path:literal, $one:ident { $singular:ident }, $list:ident { $plural:ident }) => {
        #[doc = concat!("`{\"", stringify!($singular), "\": {...}}`")]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $one {
            pub $singular: $object,
        }

        #[doc = concat!("`{\"", stringify!($plural), "\": [...], \"meta\": {...}}`: every object, in one page.")]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $list {
            pub $plural: Vec<$object>,
            pub meta: Meta,
        }

        impl From<$object> for $one {
            fn from($singular: $object) -> Self {
                Self { $singular }
            }
        }

        impl From<$one> for $object {
            fn from(one: $one) -> Self {
                one.$singular
            }
        }

        impl From<Vec<$object>> for $list {
            fn from($plural: Vec<$object>) -> Self {
                let meta = Meta { total: $plural.len() as u64, ..Meta::default() };
                Self { $plural, meta }
            }
        }

        impl From<$list> for Vec<$object> {
            fn from(list: $list) -> Self {
                list.$plural
            }
        }

        impl GatewayObject for $object {
            type Request = $request;
            type One = $one;
            type List = $list;
            const PATH: &'static str = $path;
        }
    };
}

envelopes!(Service, ServiceRequest, "/v2/gateway/services", ServiceEnvelope { service }, ServiceList { services });
envelopes!(Route, RouteRequest, "/v2/gateway/routes", RouteEnvelope { route }, RouteList { routes });
envelopes!(Plugin, PluginRequest, "/v2/gateway/plugins", PluginEnvelope { plugin }, PluginList { plugins });

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_sends_only_what_is_set() {
        let r = RouteRequest {
            paths: Some(vec!["/app".into()]),
            service: Some(Ref::new("00000000-0000-0000-0000-000000000001")),
            ..RouteRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"paths": ["/app"], "service": {"id": "00000000-0000-0000-0000-000000000001"}})
        );
        let p = PluginRequest {
            name: "session".into(),
            config: Some(SessionPluginConfigRequest { cookie_secure: Some(false), ..Default::default() }),
            ..PluginRequest::default()
        };
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"name": "session", "config": {"cookie_secure": false}}));
        assert!(serde_json::from_value::<ServiceRequest>(json!({"nmae": "x"})).is_err(), "a typo is an error");
    }

    #[test]
    fn a_list_counts_its_objects_and_has_no_further_pages() {
        let list = RouteList::from(vec![]);
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"routes": [], "meta": {"total": 0, "links": {"next": "", "prev": ""}}})
        );
    }
}
