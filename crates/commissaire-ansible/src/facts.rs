//! Host facts (OS, CPUs, memory, free space): one small POSIX shell
//! command ([`Facts::COMMAND`]) run over the host's SSH session, a single
//! round trip that needs nothing but `sh` and coreutils on the host, and
//! its output read by [`Facts::parse`].

use serde::{Deserialize, Serialize};

use crate::{AnsibleError, vars::is_supported_os};

/// What the investigator records about a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// One of `fedora`, `rhel`, `centos`, `atomic`, `debian`, `ubuntu`:
    /// `atomic` when `/run/ostree-booted` exists, else from `/etc/os-release`
    /// (`ID`, then the first known entry of `ID_LIKE`).
    pub os: String,
    /// Online CPUs (`nproc`).
    pub cpus: i64,
    /// Total memory in KiB (`MemTotal` of `/proc/meminfo`).
    pub memory: i64,
    /// Free space on `/` in KiB (available to unprivileged users, `df -Pk /`).
    pub space: i64,
}

impl Facts {
    /// The command that prints a host's facts (a shell command line).
    pub const COMMAND: &'static str = concat!(
        "/bin/sh -c '",
        "echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; ",
        "echo; echo @@ostree; if [ -e /run/ostree-booted ]; then echo yes; else echo no; fi; ",
        "echo @@cpus; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN; ",
        "echo @@meminfo; grep MemTotal: /proc/meminfo; ",
        "echo @@df; df -Pk / | tail -n 1'"
    );

    /// Reads what [`Facts::COMMAND`] printed on `address`.
    ///
    /// Errors: [`AnsibleError::UnsupportedOs`], [`AnsibleError::Parse`].
    pub fn parse(address: &str, output: &str) -> Result<Facts, AnsibleError> {
        parse_facts(address, output)
    }
}

/// Maps `/etc/os-release` + the ostree marker to a supported OS name.
fn detect_os(address: &str, os_release: &str, ostree: bool) -> Result<String, AnsibleError> {
    if ostree {
        return Ok("atomic".into());
    }
    let field = |name: &str| {
        os_release.lines().find_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            (k == name).then(|| v.trim().trim_matches(['"', '\'']).to_ascii_lowercase())
        })
    };
    let id = field("ID").unwrap_or_default();
    let canonical = |s: &str| match s {
        "redhat" => Some("rhel".to_string()),
        s if is_supported_os(s) && s != "atomic" => Some(s.to_string()),
        _ => None,
    };
    if let Some(os) = canonical(&id) {
        return Ok(os);
    }
    let like = field("ID_LIKE").unwrap_or_default();
    like.split_whitespace()
        .find_map(canonical)
        .ok_or_else(|| AnsibleError::UnsupportedOs {
            address: address.into(),
            os_id: id,
        })
}

fn parse_facts(address: &str, out: &str) -> Result<Facts, AnsibleError> {
    let mut section = "";
    let (mut os_release, mut ostree, mut cpus, mut meminfo, mut df) =
        (String::new(), "", "", "", "");
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            section = match name.trim() {
                "os-release" => "os-release",
                "ostree" => "ostree",
                "cpus" => "cpus",
                "meminfo" => "meminfo",
                "df" => "df",
                _ => "",
            };
            continue;
        }
        match section {
            "os-release" => {
                os_release.push_str(line);
                os_release.push('\n');
            }
            "ostree" if !line.trim().is_empty() => ostree = line.trim(),
            "cpus" if !line.trim().is_empty() => cpus = line.trim(),
            "meminfo" if !line.trim().is_empty() => meminfo = line.trim(),
            "df" if !line.trim().is_empty() => df = line.trim(),
            _ => {}
        }
    }
    let bad = |what: &str, reason: String| AnsibleError::Parse {
        what: format!("{what} of {address}"),
        reason,
    };
    let os = detect_os(address, &os_release, ostree == "yes")?;
    let cpus: i64 = cpus
        .parse()
        .map_err(|_| bad("CPU count", format!("{cpus:?} is not a number")))?;
    // "MemTotal:       24683584 kB"
    let memory: i64 = meminfo
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad("MemTotal", format!("unexpected line {meminfo:?}")))?;
    // "overlay 263174212 90211080 159523588 37% /" — read from the end:
    // the device name may contain spaces, the mount point `/` does not.
    let fields: Vec<&str> = df.split_whitespace().collect();
    let space: i64 = fields
        .len()
        .checked_sub(3)
        .and_then(|i| fields[i].parse().ok())
        .ok_or_else(|| bad("free space", format!("unexpected df line {df:?}")))?;
    Ok(Facts {
        os,
        cpus,
        memory,
        space,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "@@os-release\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n\n@@ostree\nno\n@@cpus\n2\n@@meminfo\nMemTotal:       24683584 kB\n@@df\noverlay 263174212 90211080 159523588 37% /\n";

    #[test]
    fn parses_debian() {
        let f = parse_facts("h", OUT).unwrap();
        assert_eq!(
            f,
            Facts {
                os: "debian".into(),
                cpus: 2,
                memory: 24683584,
                space: 159523588
            }
        );
    }

    #[test]
    fn detects_os() {
        let d = |s: &str, ostree| detect_os("h", s, ostree);
        assert_eq!(d("ID=fedora\n", false).unwrap(), "fedora");
        assert_eq!(d("ID=fedora\n", true).unwrap(), "atomic");
        assert_eq!(
            d("ID=\"rhel\"\nID_LIKE=\"fedora\"\n", false).unwrap(),
            "rhel"
        );
        assert_eq!(d("ID=\"centos\"\n", false).unwrap(), "centos");
        assert_eq!(
            d("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n", false).unwrap(),
            "rhel"
        );
        assert_eq!(
            d("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", false).unwrap(),
            "ubuntu"
        );
        assert_eq!(d("ID=ubuntu\nID_LIKE=debian\n", false).unwrap(), "ubuntu");
        let e = d("ID=arch\n", false).unwrap_err();
        assert!(matches!(e, AnsibleError::UnsupportedOs { ref os_id, .. } if os_id == "arch"));
    }

    #[test]
    fn rejects_garbage() {
        let e = parse_facts("h", &OUT.replace("\n2\n", "\nmany\n")).unwrap_err();
        assert!(e.to_string().contains("CPU count"), "{e}");
        let e = parse_facts("h", &OUT.replace("MemTotal:       24683584 kB", "")).unwrap_err();
        assert!(e.to_string().contains("MemTotal"), "{e}");
    }
}
