//! Directories left by processes killed without a chance to clean up
//! (`kill -9`, a crash): named `<prefix><pid>-...` after their owner, they
//! are another process's to remove once that pid is gone.

use std::path::{Path, PathBuf};

/// The entries of `parent` named `<prefix><pid>-...` whose process `pid` is
/// gone (never this process's own), with that pid.
pub fn orphaned_dirs(parent: &Path, prefix: &str) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name
                .to_str()?
                .strip_prefix(prefix)?
                .split_once('-')?
                .0
                .parse::<u32>()
                .ok()?;
            let gone = pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
            gone.then(|| (entry.path(), pid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_directories_of_dead_owners_are_orphans() {
        let parent = tempfile::tempdir().unwrap();
        let mine = format!("x-{}-a", std::process::id());
        for name in [
            "x-4999999-a",
            "x-1-b",
            "y-4999999-c",
            "x-notapid-d",
            mine.as_str(),
        ] {
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        let found = orphaned_dirs(parent.path(), "x-");
        assert_eq!(found, [(parent.path().join("x-4999999-a"), 4999999)]);
    }
}
