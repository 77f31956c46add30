//! Storage: the ports (traits) the engine depends on, and one SQL adapter that serves both
//! SQLite and Postgres through sqlx's `Any` driver with the same SQL text, so the two backends
//! cannot drift apart. The backend is chosen once, at `connect`.

mod ports;
mod sql;

pub use ports::{
    AccountStore, ChangeStore, KeyStore, LedgerMismatch, LedgerStore, MoneySnapshot, NewAccount,
    PlanStore, SessionStore, Store, StoreError, UsageGroup, UsagePage, UsageStore, UsageTotal,
};
pub use sql::{connect, Backend, SqlStore};
