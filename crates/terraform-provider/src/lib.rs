//! The Terraform provider for Tessera (`terraform-provider-tessera`), served over Terraform's
//! plugin protocol 6 by the `tf-provider` crate.
//!
//! [`provider::TesseraProvider`] configures an API client; [`engine`] runs the Terraform
//! lifecycle for every resource in [`resources`] and for the [`data_iam_session`] data source.

pub mod api;
pub mod data_iam_session;
pub mod engine;
pub mod provider;
pub mod resources;
pub mod schema;
pub mod value;
