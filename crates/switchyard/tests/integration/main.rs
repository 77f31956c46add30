//! The integration tests: the real server on 127.0.0.1:0, driven over HTTP, against fake
//! upstreams on loopback, each test with its own database. The tree mirrors the routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod api_admin;
mod api_auth;
mod api_billing;
mod api_keys;
mod api_stripe;
mod api_usage;
mod binary;
mod errors;
mod health;
mod limits;
mod postgres;
mod protocols;
mod routing;
mod sdk;
mod v1_models;
mod v1_relay;
mod v1_stream;
