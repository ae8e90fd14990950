//! Tessera's domain: the nouns of a session authority and the rules between them.
//!
//! This crate never does I/O, never reads a clock and never draws randomness on its own:
//! the caller passes `now` and an RNG, so every rule here is a plain function a test can pin.

pub mod audit;
pub mod error;
pub mod filter;
pub mod gateway;
pub mod ids;
pub mod login;
pub mod oidc;
pub mod page;
pub mod path;
pub mod policy;
pub mod role;
pub mod session;
pub mod time;
pub mod token;
pub mod trust;
pub mod user;
pub mod x509;

pub use error::{DomainError, FieldError};
pub use time::Timestamp;
