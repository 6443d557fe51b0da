//! A small, bounded, expiring cache of successful verifications.
//!
//! Entries are keyed by an HMAC-SHA256 (with a random key made when the
//! cache is created, so per process) of the credentials and whatever they
//! were checked against: the cache never holds a password or token, and a
//! key cannot be recomputed outside this process. Only successes are ever
//! stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The default number of entries.
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

/// A cache key: the HMAC of the credentials.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

struct Entry {
    user: String,
    inserted: Instant,
    expires: Instant,
}

/// Successful verifications, keyed by [`CacheKey`].
pub(crate) struct SuccessCache {
    mac: HmacSha256,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl SuccessCache {
    /// A cache keeping entries for `ttl` (zero disables caching), holding at
    /// most `capacity` entries.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 64];
        rand::rng().fill(&mut key[..]);
        let mac =
            <HmacSha256 as hmac::digest::KeyInit>::new(&hmac::digest::Key::<HmacSha256>::from(key));
        SuccessCache {
            mac,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
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

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Entry>> {
        // A panic elsewhere while holding the lock cannot leave the map
        // inconsistent (every operation is a single map call), so a poisoned
        // lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user of a live entry.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut entries = self.entries();
        match entries.get(key) {
            Some(entry) if entry.expires > Instant::now() => Some(entry.user.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a success. When full, expired entries go first, then the
    /// oldest ones.
    pub(crate) fn insert(&self, key: CacheKey, user: String) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries();
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.expires > now);
            while entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.inserted)
                    .map(|(key, _)| *key);
                match oldest {
                    Some(oldest) => {
                        entries.remove(&oldest);
                    }
                    None => break,
                }
            }
        }
        let Some(expires) = now.checked_add(self.ttl) else {
            return;
        };
        entries.insert(
            key,
            Entry {
                user,
                inserted: now,
                expires,
            },
        );
    }

    /// How many entries are held (live or not yet evicted).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries().len()
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
    fn bounded_expired_first_then_oldest() {
        let cache = SuccessCache::new(Duration::from_secs(60), 3);
        let keys: Vec<_> = (0u8..5).map(|i| cache.key(&[&[i]])).collect();
        for (i, key) in keys.iter().enumerate().take(3) {
            cache.insert(*key, format!("u{i}"));
            std::thread::sleep(Duration::from_millis(2));
        }
        // Make entry 1 expired: it must go before the oldest live one (0).
        {
            let mut entries = cache.entries();
            let entry = entries.get_mut(&keys[1]).unwrap();
            entry.expires = Instant::now() - Duration::from_secs(1);
        }
        cache.insert(keys[3], "u3".into());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&keys[0]).as_deref(), Some("u0"));
        assert_eq!(cache.get(&keys[1]), None);
        // Now full of live entries: the oldest (0) goes.
        cache.insert(keys[4], "u4".into());
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&keys[0]), None);
        assert_eq!(cache.get(&keys[2]).as_deref(), Some("u2"));
        assert_eq!(cache.get(&keys[4]).as_deref(), Some("u4"));
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = SuccessCache::new(Duration::ZERO, 3);
        let key = cache.key(&[b"x"]);
        cache.insert(key, "x".into());
        assert_eq!(cache.get(&key), None);
    }
}
