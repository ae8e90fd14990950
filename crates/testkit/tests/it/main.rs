//! End-to-end tests: a real server on 127.0.0.1, the real client, a controlled clock.

mod assume;
mod bad_input;
mod gateway;
mod iam;
mod login;
mod nodes;
mod query;
