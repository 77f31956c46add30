//! Storage: the ports (traits) the engine depends on, and one SQL adapter that serves both
//! SQLite and Postgres through sqlx's `Any` driver with the same SQL text, so the two backends
//! cannot drift apart. The backend is chosen once, at `connect`.

mod ports;
mod sql;

pub use ports::{
    AccountStore, KeyStore, NewAccount, SessionStore, Store, StoreError, UsagePage, UsageStore,
};
pub use sql::{connect, Backend, SqlStore};
