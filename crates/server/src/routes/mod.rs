//! The route table of the `/v2` API.

pub mod assumed;
pub mod gateway;
pub mod iam;
pub mod sessions;
