//! The OpenAI-compatible API.

pub mod models;
pub mod relay;
