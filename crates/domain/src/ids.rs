//! Identifiers. All are UUIDv7 strings minted by the application, so ids sort by creation
//! time and never need a database round trip (the batched usage writer relies on that).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A UUIDv7 stamped with the coarse wall clock (`crate::time::wall_clock`). Each thread keeps
/// its own v7 context, so a thread's ids strictly increase even within one clock tick (the
/// context counts up while the time stands still) without a lock shared by every request.
fn new_v7() -> uuid::Uuid {
    thread_local!(static CONTEXT: uuid::ContextV7 = const { uuid::ContextV7::new() });
    let now = crate::time::wall_clock();
    CONTEXT.with(|ctx| {
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            ctx,
            now.as_secs(),
            now.subsec_nanos(),
        ))
    })
}

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
                Self(new_v7().hyphenated().encode_lower(&mut buf).to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_minted_in_a_burst_strictly_increase_and_carry_the_time() {
        // Thousands within one tick of the coarse clock: the context's counter orders them.
        let ids: Vec<UsageId> = (0..5_000).map(|_| UsageId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let id = uuid::Uuid::parse_str(ids[0].as_str()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        let now = crate::time::wall_clock().as_secs();
        assert!(now.abs_diff(secs) <= 1, "{secs} against {now}");
    }
}
