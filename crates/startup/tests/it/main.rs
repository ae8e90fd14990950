//! The settings' layers and the docs that list them, and what `Application::build` refuses.

mod application;
mod metrics;
mod settings;
