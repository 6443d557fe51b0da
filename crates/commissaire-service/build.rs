//! Records the git commit the binaries are built from, as
//! `COMMISSAIRE_GIT_COMMIT` (`GET /version`, `commissaire_build_info`):
//! the variable of that name when the build is given one (packaging),
//! else `git rev-parse HEAD` of the source tree, else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=COMMISSAIRE_GIT_COMMIT");
    let given = std::env::var("COMMISSAIRE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty());
    let commit = match given {
        Some(c) => c,
        None => {
            // Built again when HEAD moves: a checkout (HEAD) or a commit
            // (the branch's ref, or packed-refs).
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                println!("cargo:rerun-if-changed={dir}/HEAD");
                println!("cargo:rerun-if-changed={dir}/packed-refs");
                if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={dir}/{branch}");
                }
            }
            git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=COMMISSAIRE_GIT_COMMIT={commit}");
}
