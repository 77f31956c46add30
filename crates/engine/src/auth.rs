//! Authentication of `/v1` requests by API key, served from an in-memory cache so the hot path
//! never waits on the database. Any change to a key or its account invalidates its entry.

use crate::FastMap;
use crate::{internal, Engine};
use domain::api_key::KeyDigest;
use domain::{
    Account, AccountStatus, ApiError, ApiKeyRecord, ApiKeySecret, ErrorCode, KeyHash, UnixMillis,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long an unknown (well-formed) key is remembered as unknown, so a flood of forged keys
/// cannot turn into a flood of database lookups. Short, because a key minted on another node
/// must start working quickly.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Entries kept at most; past this the cache is cleared (it refills from the database).
const MAX_ENTRIES: usize = 200_000;

/// A key and its account, as the request path sees them.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key: ApiKeyRecord,
    pub account: Account,
}

/// Proof that a request carried a usable key.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub grant: Arc<KeyGrant>,
}

impl Authenticated {
    pub fn key(&self) -> &ApiKeyRecord {
        &self.grant.key
    }

    pub fn account(&self) -> &Account {
        &self.grant.account
    }
}

enum Entry {
    Found(Arc<KeyGrant>),
    Missing { until: Instant },
}

#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<FastMap<KeyDigest, Entry>>,
    /// Bumped by every invalidation; a lookup that raced one does not fill the cache.
    generation: AtomicU64,
}

impl KeyCache {
    fn get(&self, digest: &KeyDigest) -> Option<Option<Arc<KeyGrant>>> {
        let map = self.entries.read().ok()?;
        match map.get(digest)? {
            Entry::Found(g) => Some(Some(g.clone())),
            Entry::Missing { until } if Instant::now() < *until => Some(None),
            Entry::Missing { .. } => None,
        }
    }

    fn fill(&self, digest: KeyDigest, entry: Entry, generation: u64) {
        let Ok(mut map) = self.entries.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(digest, entry);
    }

    /// Forgets one key.
    pub fn invalidate_key(&self, hash: &KeyHash) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let (Ok(mut map), Some(digest)) = (self.entries.write(), hash.digest()) {
            map.remove(&digest);
        }
    }

    /// Forgets every key of an account (its status or plan changed).
    pub fn invalidate_account(&self, account: &domain::AccountId) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.entries.write() {
            map.retain(|_, e| !matches!(e, Entry::Found(g) if &g.account.id == account));
        }
    }
}

impl Engine {
    /// Authenticates a presented API key. Malformed keys (wrong prefix, length or checksum)
    /// are refused without any lookup; known keys come from the cache.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Authenticated, ApiError> {
        let presented = presented.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidApiKey,
                "missing API key: send it as `Authorization: Bearer sk-sy-…`",
            )
        })?;
        let invalid = || ApiError::new(ErrorCode::InvalidApiKey, "invalid API key");
        let presented = presented.trim();
        if !ApiKeySecret::is_well_formed(presented) {
            return Err(invalid());
        }
        let digest = self.pepper.digest(presented);
        let grant = match self.keys.get(&digest) {
            Some(found) => found,
            None => self.load_key(digest).await?,
        };
        let grant = grant.ok_or_else(invalid)?;
        if !grant.key.is_usable_at(UnixMillis::now()) {
            let why = if grant.key.disabled {
                "disabled"
            } else {
                "expired"
            };
            return Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                format!("this API key is {why}"),
            ));
        }
        if grant.account.status != AccountStatus::Active {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this account is disabled",
            ));
        }
        Ok(Authenticated { grant })
    }

    async fn load_key(&self, digest: KeyDigest) -> Result<Option<Arc<KeyGrant>>, ApiError> {
        let generation = self.keys.generation.load(Ordering::Acquire);
        let found = self
            .store
            .key_by_hash(&KeyHash::from_digest(&digest))
            .await
            .map_err(|e| internal("looking up an API key", e))?;
        let grant = found.map(|(key, account)| Arc::new(KeyGrant { key, account }));
        let entry = match &grant {
            Some(g) => Entry::Found(g.clone()),
            None => Entry::Missing {
                until: Instant::now() + NEGATIVE_TTL,
            },
        };
        self.keys.fill(digest, entry, generation);
        Ok(grant)
    }
}
