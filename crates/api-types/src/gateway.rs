//! The gateway's objects on the wire (`/v2/gateway/{services,routes,plugins,ca_certificates}`),
//! shaped like Kong's Admin API.
//!
//! Answers ([`Service`], [`Route`], [`Plugin`]) carry every field, `null` included, as the
//! server has them; a plugin's `config.secret` always reads as `null` (it is write-only).
//! Requests ([`ServiceRequest`], [`RouteRequest`], [`PluginRequest`]) carry only what the
//! caller sets: a field left `None` is not sent, and the server applies Kong's default.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Meta;

/// A reference to another object by id, as Kong writes it: `{"id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    pub id: String,
}

impl Ref {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// Declares an object as answered (every field, `null` included) and its request (every
/// field optional, sent only when set), from one list of `field: answer type, request type;`.
/// `#[answer(...)]` puts a serde attribute on the answer's field only.
macro_rules! wire_object {
    (
        $(#[doc = $doc:literal])* answer $answer:ident;
        $(#[doc = $rdoc:literal])* request $request:ident;
        { $( $(#[doc = $fdoc:literal])* $(#[answer($($aattr:meta),*)])? $field:ident: $answer_ty:ty, $request_ty:ty; )* }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        pub struct $answer {
            $( $(#[doc = $fdoc])* $(#[serde($($aattr),*)])? pub $field: $answer_ty, )*
        }

        $(#[doc = $rdoc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $request {
            $( $(#[doc = $fdoc])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$request_ty>, )*
        }
    };
}

wire_object! {
    /// An upstream, as answered.
    answer Service;
    /// Creates or replaces a service: `{"name", "url"}`, or the parts of the url.
    request ServiceRequest;
    {
        id: String, String;
        name: Option<String>, String;
        /// Shorthand for protocol, host, port and path: sent, never answered (answers carry
        /// the parts).
        #[answer(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>, String;
        protocol: Option<String>, String;
        host: Option<String>, String;
        port: Option<u16>, u16;
        path: Option<String>, String;
        retries: u32, u32;
        /// Milliseconds.
        connect_timeout: u64, u64;
        write_timeout: u64, u64;
        read_timeout: u64, u64;
        enabled: bool, bool;
        tags: Vec<String>, Vec<String>;
        /// Unix seconds.
        created_at: i64, i64;
        updated_at: i64, i64;
        /// An `https` service: verify its certificate (unset: yes; Kong's unset means no).
        #[answer(default, skip_serializing_if = "Option::is_none")]
        tls_verify: Option<bool>, bool;
        /// An `https` service: ids of CA certificate objects its certificate is verified
        /// against, instead of the gateway's default roots (unset or empty: the defaults).
        #[answer(default)]
        ca_certificates: Option<Vec<String>>, Vec<String>;
        /// An `https` service: the most intermediate CA certificates allowed between the
        /// upstream's certificate and a trusted root (0-64; 0: issued by a trusted CA itself;
        /// unset: no limit of its own).
        #[answer(default)]
        tls_verify_depth: Option<u32>, u32;
    }
}

wire_object! {
    /// A CA certificate (Kong's `ca_certificate`), as answered.
    answer CaCertificate;
    /// Creates or replaces a CA certificate: `cert` is PEM, one CA certificate.
    request CaCertificateRequest;
    {
        id: String, String;
        /// PEM: exactly one X.509 certificate with basicConstraints `CA:TRUE`.
        cert: String, String;
        /// The hex SHA-256 of the certificate's DER, computed by the server (a value sent is
        /// replaced); unique within the organization.
        cert_digest: String, String;
        tags: Vec<String>, Vec<String>;
        /// Unix seconds.
        created_at: i64, i64;
        updated_at: i64, i64;
    }
}

wire_object! {
    /// Which requests go to a service, as answered.
    answer Route;
    /// Creates or replaces a route.
    request RouteRequest;
    {
        id: String, String;
        name: Option<String>, String;
        /// Prefixes, or regular expressions with Kong's `~` prefix (`~/users/\\d+$`),
        /// anchored at the start of the path.
        paths: Vec<String>, Vec<String>;
        /// Host names; `*.example.com` and `example.*` are wildcards.
        hosts: Vec<String>, Vec<String>;
        methods: Vec<String>, Vec<String>;
        /// Headers the request must carry, each with one of the values (case-insensitive;
        /// `~*` starts a regular expression).
        headers: std::collections::BTreeMap<String, Vec<String>>, std::collections::BTreeMap<String, Vec<String>>;
        /// Kong's TLS server names: only an empty list is accepted.
        snis: Vec<String>, Vec<String>;
        /// `http`, `https`, `ws`, `wss`: which requests the route takes.
        protocols: Vec<String>, Vec<String>;
        /// Orders routes whose regex paths match the same request (higher first).
        regex_priority: i64, i64;
        /// A plain-http request to an https-only route: 426, or a redirect (301/302/307/308).
        https_redirect_status_code: u16, u16;
        strip_path: bool, bool;
        preserve_host: bool, bool;
        service: Option<Ref>, Ref;
        tags: Vec<String>, Vec<String>;
        created_at: i64, i64;
        updated_at: i64, i64;
    }
}

wire_object! {
    /// A plugin instance (only `session` exists), as answered.
    answer Plugin;
    /// Creates or replaces a plugin; `name` is `session`.
    request PluginRequest;
    {
        id: String, String;
        name: String, String;
        instance_name: Option<String>, String;
        config: SessionPluginConfig, SessionPluginConfigRequest;
        enabled: bool, bool;
        protocols: Vec<String>, Vec<String>;
        route: Option<Ref>, Ref;
        service: Option<Ref>, Ref;
        consumer: Option<Ref>, Ref;
        tags: Vec<String>, Vec<String>;
        /// Kong's plugin ordering, stored as given (the gateway runs one plugin).
        ordering: Option<Value>, Value;
        /// Kong's partials, stored as given.
        partials: Option<Vec<Value>>, Vec<Value>;
        workspace: String, String;
        created_at: i64, i64;
        updated_at: i64, i64;
    }
}

wire_object! {
    /// The `session` plugin's settings as answered: every field of Kong 3.12's schema and
    /// Tessera's `unauthenticated`. Timeouts are seconds.
    answer SessionPluginConfig;
    /// The `session` plugin's settings to set; the ones left `None` take Kong's defaults (on
    /// a replace, a missing `secret` keeps the stored one).
    request SessionPluginConfigRequest;
    {
        /// Write-only: always `null` in answers (it keys every cookie and is never read back).
        secret: Option<String>, String;
        storage: String, String;
        audience: String, String;
        idling_timeout: f64, f64;
        rolling_timeout: f64, f64;
        absolute_timeout: f64, f64;
        stale_ttl: f64, f64;
        cookie_name: String, String;
        cookie_path: String, String;
        cookie_domain: Option<String>, String;
        cookie_same_site: String, String;
        cookie_http_only: bool, bool;
        cookie_secure: bool, bool;
        remember: bool, bool;
        remember_cookie_name: String, String;
        remember_rolling_timeout: f64, f64;
        remember_absolute_timeout: f64, f64;
        request_headers: Option<Vec<String>>, Vec<String>;
        response_headers: Option<Vec<String>>, Vec<String>;
        logout_methods: Vec<String>, Vec<String>;
        logout_query_arg: String, String;
        logout_post_arg: String, String;
        read_body_for_logout: bool, bool;
        hash_subject: bool, bool;
        store_metadata: bool, bool;
        bind: Option<Vec<String>>, Vec<String>;
        /// `reject`, `redirect` or `pass`.
        unauthenticated: String, String;
    }
}

/// One of the kinds of gateway object: where it lives, what creates it, and how one
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
    fn id(&self) -> &str;
    /// The name it is known by in a configuration file: `name`, a plugin's `instance_name`,
    /// a CA certificate's `cert_digest`.
    fn name(&self) -> Option<&str>;
}

/// A name field, optional or not.
trait NameField {
    fn name(&self) -> Option<&str>;
}

impl NameField for Option<String> {
    fn name(&self) -> Option<&str> {
        self.as_deref()
    }
}

impl NameField for String {
    fn name(&self) -> Option<&str> {
        Some(self)
    }
}

macro_rules! envelopes {
    ($object:ident, $request:ident, $path:literal, $name:ident, $one:ident { $singular:ident }, $list:ident { $plural:ident }) => {
        #[doc = concat!("`{\"", stringify!($singular), "\": {...}}`")]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        pub struct $one {
            pub $singular: $object,
        }

        #[doc = concat!("`{\"", stringify!($plural), "\": [...], \"meta\": {...}}`: every object, in one page.")]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> Option<&str> {
                NameField::name(&self.$name)
            }
        }
    };
}

envelopes!(
    Service,
    ServiceRequest,
    "/v2/gateway/services",
    name,
    ServiceEnvelope { service },
    ServiceList { services }
);
envelopes!(Route, RouteRequest, "/v2/gateway/routes", name, RouteEnvelope { route }, RouteList { routes });
envelopes!(
    Plugin,
    PluginRequest,
    "/v2/gateway/plugins",
    instance_name,
    PluginEnvelope { plugin },
    PluginList { plugins }
);

envelopes!(
    CaCertificate,
    CaCertificateRequest,
    "/v2/gateway/ca_certificates",
    cert_digest,
    CaCertificateEnvelope { ca_certificate },
    CaCertificateList { ca_certificates }
);

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
            name: Some("session".into()),
            config: Some(SessionPluginConfigRequest { cookie_secure: Some(false), ..Default::default() }),
            ..PluginRequest::default()
        };
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"name": "session", "config": {"cookie_secure": false}}));
        assert!(serde_json::from_value::<ServiceRequest>(json!({"nmae": "x"})).is_err(), "a typo is an error");
    }

    #[test]
    fn an_answer_has_every_field_but_the_url() {
        let answer = json!({
            "id": "s", "name": null, "protocol": "http", "host": "h", "port": 80, "path": null, "retries": 5,
            "connect_timeout": 1, "write_timeout": 2, "read_timeout": 3, "enabled": true, "tags": [],
            "created_at": 4, "updated_at": 5, "ca_certificates": null, "tls_verify_depth": null
        });
        let service: Service = serde_json::from_value(answer.clone()).unwrap();
        assert_eq!(service.url, None);
        assert_eq!(serde_json::to_value(&service).unwrap(), answer, "nulls are kept; no url");
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
