//! API keys: the secret's format (`sk-sy-` + 32 random base62 characters + a 6-character
//! checksum), its SHA-256 hash (the only thing stored) and the key record.
//!
//! The checksum lets a scanner recognise a leaked key and lets the gateway reject a mistyped one
//! without any lookup.

use crate::{AccountId, KeyId, Money, UnixMillis};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::fmt;

/// Every Switchyard key starts with this, so secret scanners can match it.
pub const KEY_PREFIX: &str = "sk-sy-";
/// Random base62 characters: 32 × log2(62) ≈ 190 bits of entropy.
const RANDOM_LEN: usize = 32;
/// Base62 characters of the CRC-32 checksum (62⁶ > 2³²).
const CHECKSUM_LEN: usize = 6;
/// Characters of the secret kept for display (`sk-sy-` plus four random ones).
const DISPLAY_LEN: usize = KEY_PREFIX.len() + 4;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A full API key secret. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

/// The hex HMAC-SHA256 of a secret under the instance secret ("pepper"): what the store keeps
/// and lookups use. Without the pepper, write access to the database cannot plant a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(pub String);

/// A `KeyHash` as its 32 bytes: what the in-memory key cache is keyed by, so the request path
/// never formats hex.
pub type KeyDigest = [u8; 32];

impl KeyHash {
    pub fn from_digest(d: &KeyDigest) -> Self {
        Self(hex::encode(d))
    }

    /// The bytes, when this is a well-formed hash.
    pub fn digest(&self) -> Option<KeyDigest> {
        let mut d = [0u8; 32];
        hex::decode_to_slice(&self.0, &mut d).ok()?;
        Some(d)
    }
}

impl ApiKeySecret {
    /// Mints a new random key.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let random: String = (0..RANDOM_LEN)
            .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
            .collect();
        let mut key = format!("{KEY_PREFIX}{random}");
        key.extend(checksum(&random).map(char::from));
        Self(key)
    }

    /// Parses a presented key, checking prefix, alphabet, length and checksum. No I/O.
    pub fn parse(s: &str) -> Option<Self> {
        Self::is_well_formed(s).then(|| Self(s.to_owned()))
    }

    /// `parse` without keeping a copy: what a request's key is checked with before its
    /// HMAC (`Pepper::digest`) is looked up.
    pub fn is_well_formed(s: &str) -> bool {
        let Some(body) = s.strip_prefix(KEY_PREFIX) else {
            return false;
        };
        if body.len() != RANDOM_LEN + CHECKSUM_LEN
            || !body.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return false;
        }
        let (random, check) = body.split_at(RANDOM_LEN);
        checksum(random) == check.as_bytes()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self, pepper: &Pepper) -> KeyHash {
        KeyHash::from_digest(&pepper.digest(&self.0))
    }

    /// The part shown in listings, e.g. `sk-sy-AbC1`.
    pub fn display_prefix(&self) -> String {
        self.0[..DISPLAY_LEN].to_owned()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// The instance secret as an HMAC-SHA256 key, set up once: a hash then costs two SHA-256
/// blocks instead of four (the key's own two are done here, not per request).
#[derive(Clone)]
pub struct Pepper(Hmac<Sha256>);

impl Pepper {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so the fallback (an all-zero key) is never taken.
        Self(
            Hmac::<Sha256>::new_from_slice(secret)
                .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default())),
        )
    }

    /// HMAC-SHA256 of `value`, as lowercase hex.
    pub fn hash(&self, value: &str) -> String {
        hex::encode(self.digest(value))
    }

    /// HMAC-SHA256 of `value`.
    pub fn digest(&self, value: &str) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(…)")
    }
}

fn checksum(random: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = u64::from(crc32fast::hash(random.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A stored key: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: KeyId,
    pub account_id: AccountId,
    pub name: String,
    pub prefix: String,
    pub hash: KeyHash,
    pub disabled: bool,
    /// Spend allowed per calendar month (UTC), if limited.
    pub monthly_limit: Option<Money>,
    /// Public model names this key may call; `None` means every model the account may use.
    pub allowed_models: Option<Vec<String>>,
    pub expires_at: Option<UnixMillis>,
    /// Per-key overrides of the plan's limits.
    pub rpm_limit: Option<u32>,
    pub tpm_limit: Option<u32>,
    pub concurrency_limit: Option<u32>,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

impl ApiKeyRecord {
    /// Whether the key may be used at `now` (not disabled, not expired).
    pub fn is_usable_at(&self, now: UnixMillis) -> bool {
        !self.disabled && self.expires_at.is_none_or(|exp| now < exp)
    }

    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| m == model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pepper_keyed_once_hashes_as_hmac_sha256_every_time() {
        // RFC 4231, test case 2.
        let pepper = Pepper::new(b"Jefe");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(pepper.hash("what do ya want for nothing?"), expected);
        assert_eq!(pepper.hash("what do ya want for nothing?"), expected);
        assert_eq!(format!("{pepper:?}"), "Pepper(…)");
    }

    #[test]
    fn generated_keys_parse_and_have_the_documented_shape() {
        let k = ApiKeySecret::generate();
        let s = k.expose();
        assert!(s.starts_with("sk-sy-"));
        assert_eq!(s.len(), 6 + 32 + 6);
        assert_eq!(ApiKeySecret::parse(s), Some(k.clone()));
        assert_eq!(k.hash(&Pepper::new(b"pepper")).0.len(), 64);
        assert_ne!(
            k.hash(&Pepper::new(b"pepper")),
            k.hash(&Pepper::new(b"other"))
        );
        assert_eq!(k.display_prefix().len(), 10);
        assert!(!format!("{k:?}").contains(&s[10..]));
    }

    #[test]
    fn a_single_mistyped_character_is_rejected_by_checksum() {
        let k = ApiKeySecret::generate();
        let s = k.expose().to_owned();
        let mut bytes = s.clone().into_bytes();
        let i = 10;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(ApiKeySecret::parse(&typo), None);
        assert_eq!(ApiKeySecret::parse(&s[..s.len() - 1]), None);
        assert_eq!(ApiKeySecret::parse(&format!("sk-xx-{}", &s[6..])), None);
        assert_eq!(ApiKeySecret::parse(""), None);
    }
}
