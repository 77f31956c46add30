//! HTTP: the router, the layer order, extractors, error rendering and one file per endpoint.
//! Handlers translate between HTTP and `engine` calls and hold no business rules.

mod app;
mod error;
mod extract;
mod request_id;
mod routes;

pub use app::{router, HttpSettings};
pub use error::ErrorResponse;
