//! Replica names: how a daemon names itself in the records it claims.

/// A replica name unique across hosts and restarts:
/// `<hostname>-<pid>-<random>` (`fallback` when the host name is unknown).
pub fn replica_id(fallback: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| fallback.to_string());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

#[cfg(test)]
mod tests {
    #[test]
    fn replica_ids_differ_between_calls() {
        let (a, b) = (super::replica_id("x"), super::replica_id("x"));
        assert_ne!(a, b);
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }
}
