//! A small, bounded, expiring cache of successful verifications (a
//! [`moka`] cache: entries live `ttl`, the least useful go first when it
//! is full).
//!
//! Entries are keyed by an HMAC-SHA256 (with a random key made when the
//! cache is created, so per process) of the credentials and whatever they
//! were checked against: the cache never holds a password or token, and a
//! key cannot be recomputed outside this process. Only successes are ever
//! stored.

use std::time::Duration;

use hmac::{Hmac, Mac};
use moka::sync::Cache;
use rand::Rng;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The default number of entries.
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

/// A cache key: the HMAC of the credentials.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

/// Successful verifications, keyed by [`CacheKey`]: the user each was for.
pub(crate) struct SuccessCache {
    mac: HmacSha256,
    ttl: Duration,
    capacity: usize,
    /// `None` when caching is off (`ttl` zero).
    entries: Option<Cache<CacheKey, String>>,
}

impl SuccessCache {
    /// A cache keeping entries for `ttl` (zero disables caching), holding at
    /// most `capacity` entries.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 64];
        rand::rng().fill(&mut key[..]);
        let mac =
            <HmacSha256 as hmac::digest::KeyInit>::new(&hmac::digest::Key::<HmacSha256>::from(key));
        let capacity = capacity.max(1);
        SuccessCache {
            mac,
            ttl,
            capacity,
            entries: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity as u64)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    /// The key for these credential parts (each part is length-prefixed, so
    /// `("ab", "c")` and `("a", "bc")` differ).
    pub(crate) fn key(&self, parts: &[&[u8]]) -> CacheKey {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        CacheKey(mac.finalize().into_bytes().into())
    }

    /// The user of a live entry.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<String> {
        self.entries.as_ref()?.get(key)
    }

    /// Remembers a success.
    pub(crate) fn insert(&self, key: CacheKey, user: String) {
        if let Some(entries) = &self.entries {
            entries.insert(key, user);
        }
    }

    /// How many entries are held, once pending evictions are done.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| {
            e.run_pending_tasks();
            e.entry_count()
        })
    }
}

impl std::fmt::Debug for SuccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuccessCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous_and_per_process() {
        let cache = SuccessCache::new(Duration::from_secs(60), 8);
        assert!(cache.key(&[b"ab", b"c"]) != cache.key(&[b"a", b"bc"]));
        assert!(cache.key(&[b"a", b"b"]) == cache.key(&[b"a", b"b"]));
        let other = SuccessCache::new(Duration::from_secs(60), 8);
        assert!(cache.key(&[b"a", b"b"]) != other.key(&[b"a", b"b"]));
    }

    #[test]
    fn bounded_by_its_capacity() {
        let cache = SuccessCache::new(Duration::from_secs(60), 3);
        for i in 0u8..50 {
            cache.insert(cache.key(&[&[i]]), format!("u{i}"));
        }
        assert!(cache.len() <= 3, "{} entries", cache.len());
    }

    #[test]
    fn an_entry_lives_its_ttl_and_no_longer() {
        let cache = SuccessCache::new(Duration::from_millis(50), 8);
        let key = cache.key(&[b"x"]);
        cache.insert(key, "x".into());
        assert_eq!(cache.get(&key).as_deref(), Some("x"));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.get(&key), None);
        let lasting = SuccessCache::new(Duration::from_secs(600), 8);
        lasting.insert(key, "y".into());
        assert_eq!(lasting.get(&key).as_deref(), Some("y"));
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = SuccessCache::new(Duration::ZERO, 3);
        let key = cache.key(&[b"x"]);
        cache.insert(key, "x".into());
        assert_eq!(cache.get(&key), None);
    }
}
