//! The `switchyard` program: configuration, wiring of storage, upstreams, engine and HTTP,
//! administration commands and graceful shutdown. Only this crate knows every other one.

pub mod admin;
pub mod config;
pub mod defaults;
pub mod logging;
pub mod secrets;
pub mod serve;
