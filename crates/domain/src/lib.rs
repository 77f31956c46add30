//! Pure types and rules of Switchyard: money, keys, accounts, the model catalog, usage and the
//! error vocabulary. No I/O lives here, so every rule can be tested in isolation.

pub mod account;
pub mod api_key;
pub mod catalog;
pub mod change;
pub mod error;
pub mod ids;
pub mod ledger;
pub mod limits;
pub mod money;
pub mod plan;
pub mod time;
pub mod usage;

pub use account::{Account, AccountStatus, Email, Role};
pub use api_key::{ApiKeyRecord, ApiKeySecret, KeyHash};
pub use catalog::{
    Capabilities, Catalog, Deployment, ModelPrice, ProviderId, PublicModel, Strategy,
};
pub use change::{Change, ChangeKind};
pub use error::{ApiError, ErrorCode};
pub use ids::{AccountId, KeyId, UsageId};
pub use ledger::{LedgerEntry, LedgerKind, NewLedgerEntry};
pub use limits::{Gcra, RateDecision};
pub use money::{JsonMoney, Money};
pub use plan::Plan;
pub use time::UnixMillis;
pub use usage::{Attempt, UsageEvent, UsageStatus};
