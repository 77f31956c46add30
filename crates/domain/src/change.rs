//! Changes that other processes must see: the change feed. An administrator's action (in the
//! server or the `switchyard admin` CLI) writes one; every running server applies the ones it
//! did not make, so cached keys, plans and balances follow at once.

use crate::{AccountId, KeyHash, Money, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A key changed: forget its cached grant.
    Key(KeyHash),
    /// An account's plan or status changed: forget its keys' cached grants.
    Account(AccountId),
    /// Plans changed: reload them.
    Plans,
    /// Money moved by a ledger entry; `version` is the account's balance version after it.
    Credit {
        account: AccountId,
        amount: Money,
        version: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    /// The process that made it (it has applied it already).
    pub origin: String,
    pub kind: ChangeKind,
    pub created_at: UnixMillis,
}
