//! Shared helpers for the integration tests.

pub mod fake_api;
pub mod fake_model;
