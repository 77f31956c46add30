//! Dev-only helpers: per-test databases on every backend, fake upstreams that speak the exact
//! wire formats with scripted failures, and a client for driving the gateway over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod db;
pub mod fake_openai;
pub mod fake_stripe;
