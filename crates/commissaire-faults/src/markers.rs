//! The scripts clusterexec runs on the test hosts, and the bootstrap variables that keep a host's work in a directory.

use serde_json::{Value, json};

/// Test scripts that the clusterexec operations run on the hosts (which are
/// this machine), leaving marker lines in a temporary directory.
pub struct Markers {
    /// The directory.
    pub dir: tempfile::TempDir,
}

impl Default for Markers {
    fn default() -> Self {
        Self::new()
    }
}

impl Markers {
    /// The scripts: `restart.sh ADDRESS` stops the test bed host's sshd
    /// (detached, as a reboot would), keeps it down `down_seconds`, starts
    /// it again, and logs `ADDRESS start|down|up TIME`.
    pub fn new() -> Markers {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tb = std::env::var("COMMISSAIRE_TEST_TESTBED").expect("COMMISSAIRE_TEST_TESTBED");
        let state = std::env::var("COMMISSAIRE_TEST_STATE").expect("COMMISSAIRE_TEST_STATE");
        let d = dir.path().display().to_string();
        let restart = format!(
            r#"#!/bin/sh
A=$1; I=$(( ${{A##*.}} - 10 ))
echo "$A start $(date +%s.%N)" >> {d}/restart.log
setsid -f sh -c "{tb} sshd-stop {state} $I >/dev/null 2>&1; echo \"$A down \$(date +%s.%N)\" >> {d}/restart.log; sleep 2; {tb} sshd-start {state} $I >/dev/null 2>&1; echo \"$A up \$(date +%s.%N)\" >> {d}/restart.log" </dev/null >/dev/null 2>&1
"#
        );
        std::fs::write(dir.path().join("restart.sh"), restart).expect("write restart.sh");
        let upgrade = format!(
            "#!/bin/sh\necho \"$1 start $(date +%s.%N)\" >> {d}/upgrade.log\nsleep \"${{2:-0}}\"\necho \"$1 end $(date +%s.%N)\" >> {d}/upgrade.log\n"
        );
        std::fs::write(dir.path().join("upgrade.sh"), upgrade).expect("write upgrade.sh");
        Markers { dir }
    }

    /// The `ansible_vars` making restarts and upgrades run the scripts
    /// (an upgrade takes `upgrade_seconds`).
    pub fn ansible_vars(&self, upgrade_seconds: f64) -> Value {
        let d = self.dir.path().display();
        json!({
            "commissaire_restart_command": format!("sh {d}/restart.sh {{{{ inventory_hostname }}}}"),
            "commissaire_restart_wait_delay": 0,
            "commissaire_restart_down_timeout": 20,
            "commissaire_restart_wait_timeout": 30,
            "commissaire_upgrade_command": format!("sh {d}/upgrade.sh {{{{ inventory_hostname }}}} {upgrade_seconds}"),
        })
    }

    /// Lines of a marker file, split in words (empty if there is none yet).
    pub fn lines(&self, name: &str) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    }
}

/// Bootstrap variables that keep every command and file inside `dir`; the
/// docker step logs each run and takes `slow` seconds.
pub fn bootstrap_vars(dir: &std::path::Path, slow: u32) -> Value {
    let d = dir.display();
    let script = dir.join("slow");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1 $(date +%s.%N)\" >> {d}/slow.log\nsleep {slow}\ntouch {d}/$1\n"
        ),
    )
    .unwrap();
    let record = dir.join("record");
    std::fs::write(
        &record,
        format!("#!/bin/sh\necho \"$@\" >> {d}/services.log\n"),
    )
    .unwrap();
    for f in [&script, &record] {
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(f).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    json!({
        "commissaire_enable_pkg_repos": format!("touch {d}/enable_pkg_repos"),
        "commissaire_install_libselinux_python": format!("touch {d}/install_libselinux_python"),
        "commissaire_install_flannel": format!("touch {d}/install_flannel"),
        "commissaire_install_docker": format!("{d}/slow install_docker"),
        "commissaire_install_kube": format!("touch {d}/install_kube"),
        "commissaire_service_enable_command": format!("{d}/record enable"),
        "commissaire_service_restart_command": format!("{d}/record restart"),
        "commissaire_flanneld_config": format!("{d}/flanneld"),
        "commissaire_docker_config": format!("{d}/docker"),
        "commissaire_kubernetes_config": format!("{d}/kubernetes_config"),
        "commissaire_kubeconfig_config": format!("{d}/kubeconfig"),
        "commissaire_kubelet_config": format!("{d}/kubelet"),
    })
}

/// The members of a JSON list of strings.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
