//! End-to-end tests: a real server on 127.0.0.1, the real client, a controlled clock.

mod assignments;
mod assume;
mod audit;
mod authz_matrix;
mod bad_input;
mod contention;
mod csrf;
mod gateway;
mod gateway_ca;
mod gateway_kong_router;
mod gateway_refs;
mod gateway_tls;
mod gateway_verify_depth;
mod gateway_ws;
mod http_errors;
mod iam;
mod login;
mod metrics;
mod nodes;
mod oidc;
mod query;
mod session_policy;
mod sign_in_flood;
mod sts;
mod ui;
mod whoami;
