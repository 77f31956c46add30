//! Identifiers. All are UUIDv7 strings minted by the application, so ids sort by creation
//! time and never need a database round trip (the batched usage writer relies on that).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                // Encoded into a buffer: `to_string` would go through the formatter.
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                Self(uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf).to_owned())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An account: a person who signs in and owns keys and credit.
    AccountId
);
id_type!(
    /// An API key (the record, never the secret).
    KeyId
);
id_type!(
    /// One `/v1` request's usage event.
    UsageId
);
