//! Per-OS command sets: the `commissaire_*` variables the playbooks use.

use serde_json::{Map, Value};

/// Operating systems [`os_vars`] has a command set for (`redhat` is also
/// accepted, as an alias of `rhel`).
pub const SUPPORTED_OS: &[&str] = &["fedora", "rhel", "centos", "atomic", "debian", "ubuntu"];

/// Whether `os` (as in [`Facts::os`](crate::Facts::os)) has a command set.
pub fn is_supported_os(os: &str) -> bool {
    canonical_os(os).is_some()
}

fn canonical_os(os: &str) -> Option<&'static str> {
    let os = os.trim().to_ascii_lowercase();
    match os.as_str() {
        "redhat" | "rhel" => Some("rhel"),
        other => SUPPORTED_OS.iter().copied().find(|s| *s == other),
    }
}

/// The `commissaire_*` variables for hosts running `os` (one of
/// [`SUPPORTED_OS`], case-insensitive): package installation, upgrade and
/// restart commands, remote configuration paths, service names and the
/// service management commands.
///
/// * fedora: `dnf`; rhel/centos: `yum` (rhel also enables the extras and
///   optional repositories with `subscription-manager`); atomic: nothing to
///   install (`true`), `rpm-ostree upgrade`; all of them use
///   `/etc/sysconfig/{flanneld,docker}`.
/// * debian/ubuntu: `apt-get` (repositories step: `apt-get update`),
///   `/etc/default/{flanneld,docker,kubelet}`, package `docker.io`.
/// * all: `systemctl reboot`, `systemctl enable` / `systemctl restart`,
///   services `flanneld`, `docker`, `kubelet`, `kube-proxy`,
///   `/etc/kubernetes/config`, `/var/lib/kubelet/kubeconfig`, TLS file
///   locations under `/etc/etcd` and `/etc/kubernetes`, `rpm-ostree deploy`,
///   restart waits (`commissaire_restart_wait_timeout` 600 s).
///
/// The values the service must supply per host or cluster are not here:
/// `commissaire_bootstrap_ip`, `commissaire_etcd_server_url` +
/// `commissaire_flannel_key` (flannel_etcd) or `commissaire_flanneld_server`
/// (flannel_server), `commissaire_kubernetes_api_server_url`,
/// `commissaire_kubernetes_bearer_token`, the `*_local` TLS sources,
/// `commissaire_docker_registry_host`/`_port`, `commissaire_deploy_version`.
///
/// An unknown `os` gets only the OS-independent variables (a bootstrap then
/// fails on the undefined install commands); check [`is_supported_os`] first.
pub fn os_vars(os: &str) -> Map<String, Value> {
    let mut v = Map::new();
    let mut set = |k: &str, val: Value| {
        v.insert(format!("commissaire_{k}"), val);
    };

    // OS independent.
    set("restart_command", "systemctl reboot".into());
    set("restart_wait_timeout", 600.into());
    set("restart_wait_delay", 5.into());
    set("restart_down_timeout", 120.into());
    set("restart_async_timeout", 60.into());
    set("ostree_booted_path", "/run/ostree-booted".into());
    set("ostree_upgrade_command", "rpm-ostree upgrade".into());
    set("deploy_command", "rpm-ostree deploy".into());
    set("service_enable_command", "systemctl enable".into());
    set("service_restart_command", "systemctl restart".into());
    set("flannel_service", "flanneld".into());
    set("docker_service", "docker".into());
    set("kubelet_service", "kubelet".into());
    set("kubeproxy_service", "kube-proxy".into());
    set("kubernetes_config", "/etc/kubernetes/config".into());
    set("kubeconfig_config", "/var/lib/kubelet/kubeconfig".into());
    set(
        "kubernetes_client_cert_path",
        "/etc/kubernetes/client.crt".into(),
    );
    set(
        "kubernetes_client_key_path",
        "/etc/kubernetes/client.key".into(),
    );
    set("kubernetes_ca_path", "/etc/kubernetes/ca.crt".into());
    set("etcd_client_cert_path", "/etc/etcd/client.crt".into());
    set("etcd_client_key_path", "/etc/etcd/client.key".into());
    set("etcd_ca_path", "/etc/etcd/cacert.pem".into());

    let Some(os) = canonical_os(os) else {
        return v;
    };

    let rpm = |set: &mut dyn FnMut(&str, Value), tool: &str| {
        let install = |pkg: &str| format!("{tool} install -y {pkg}");
        set("enable_pkg_repos", "".into());
        set(
            "install_libselinux_python",
            install("libselinux-python").into(),
        );
        set("install_flannel", install("flannel").into());
        set("install_docker", install("docker").into());
        set("install_kube", install("kubernetes-node").into());
        set("upgrade_command", format!("{tool} update -y").into());
        set("flanneld_config", "/etc/sysconfig/flanneld".into());
        set("docker_config", "/etc/sysconfig/docker".into());
        set("kubelet_config", "/etc/kubernetes/kubelet".into());
        set(
            "docker_options",
            "--selinux-enabled --log-driver=journald".into(),
        );
    };

    match os {
        "fedora" => {
            rpm(&mut set, "dnf");
            set(
                "install_libselinux_python",
                "dnf install -y python3-libselinux".into(),
            );
        }
        "rhel" => {
            rpm(&mut set, "yum");
            set(
                "enable_pkg_repos",
                "subscription-manager repos --enable=rhel-7-server-extras-rpms \
                 --enable=rhel-7-server-optional-rpms"
                    .into(),
            );
        }
        "centos" => rpm(&mut set, "yum"),
        "atomic" => {
            rpm(&mut set, "true");
            // Atomic hosts carry the packages in their tree.
            for k in [
                "install_libselinux_python",
                "install_flannel",
                "install_docker",
                "install_kube",
            ] {
                set(k, "true".into());
            }
            set("upgrade_command", "rpm-ostree upgrade".into());
        }
        "debian" | "ubuntu" => {
            set("enable_pkg_repos", "apt-get update".into());
            set("install_libselinux_python", "".into());
            set(
                "install_flannel",
                apt_install("flannel", "install_flannel").into(),
            );
            set(
                "install_docker",
                apt_install("docker.io", "install_docker").into(),
            );
            set(
                "install_kube",
                apt_install("kubelet", "install_kube").into(),
            );
            set(
                "upgrade_command",
                "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade".into(),
            );
            set("flanneld_config", "/etc/default/flanneld".into());
            set("docker_config", "/etc/default/docker".into());
            set("kubelet_config", "/etc/default/kubelet".into());
            set("docker_options", "--log-driver=journald".into());
        }
        _ => unreachable!("canonical_os returns a supported name"),
    }
    v
}

/// The command installing `pkg` with apt, which first checks that the
/// distribution carries it: Debian 12 packages neither flannel nor the
/// kubelet, and "Unable to locate package" would leave the operator to
/// guess. When it is missing the command fails (exit 3) saying so and which
/// variable (`commissaire_{var}`) to set in `os_commands` to install it
/// another way, or to `true` to skip it.
pub fn apt_install(pkg: &str, var: &str) -> String {
    format!(
        "if ! apt-cache show {pkg} >/dev/null 2>&1; then . /etc/os-release; \
         echo \"{pkg} is not packaged for $ID $VERSION_ID; set os_commands.$ID.commissaire_{var} \
         in investigator.conf to a command that installs it (or to true to skip it)\" >&2; \
         exit 3; fi; DEBIAN_FRONTEND=noninteractive apt-get install -y {pkg}"
    )
}

/// [`os_vars`] for `os` with `overrides` (e.g. from the service
/// configuration) applied on top: an override replaces the default, and a
/// `null` override removes the variable altogether.
pub fn merged_vars(os: &str, overrides: &Map<String, Value>) -> Map<String, Value> {
    let mut vars = os_vars(os);
    for (k, v) in overrides {
        if v.is_null() {
            vars.remove(k);
        } else {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_package_the_distribution_lacks_fails_naming_the_variable_to_set() {
        // Run for real on this (Debian) machine, with a package no
        // distribution has: the guard answers before apt-get is reached.
        assert!(
            std::process::Command::new("apt-cache")
                .arg("--version")
                .output()
                .is_ok(),
            "apt-cache is needed (the test bed machines are Debian)"
        );
        let command = apt_install("no-such-package-commissaire", "install_flannel");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap();
        let id = os_release
            .lines()
            .find_map(|l| l.strip_prefix("ID="))
            .unwrap()
            .trim_matches('"');
        assert!(
            stderr.contains(&format!(
                "no-such-package-commissaire is not packaged for {id} "
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("set os_commands.{id}.commissaire_install_flannel")),
            "{stderr}"
        );
        assert!(command.ends_with("apt-get install -y no-such-package-commissaire"));
    }

    use super::*;

    const COMMANDS_AND_PATHS: &[&str] = &[
        "commissaire_install_flannel",
        "commissaire_install_docker",
        "commissaire_install_kube",
        "commissaire_install_libselinux_python",
        "commissaire_enable_pkg_repos",
        "commissaire_upgrade_command",
        "commissaire_restart_command",
        "commissaire_deploy_command",
        "commissaire_flanneld_config",
        "commissaire_docker_config",
        "commissaire_kubernetes_config",
        "commissaire_kubeconfig_config",
        "commissaire_flannel_service",
        "commissaire_docker_service",
        "commissaire_kubelet_service",
        "commissaire_kubeproxy_service",
        "commissaire_service_enable_command",
        "commissaire_service_restart_command",
        "commissaire_restart_wait_timeout",
    ];

    #[test]
    fn every_supported_os_has_a_full_set() {
        for os in SUPPORTED_OS {
            let v = os_vars(os);
            for k in COMMANDS_AND_PATHS {
                assert!(v.contains_key(*k), "{os}: {k} missing");
            }
            assert!(v.keys().all(|k| k.starts_with("commissaire_")));
        }
    }

    #[test]
    fn per_os_commands() {
        let s = |os: &str, k: &str| os_vars(os)[k].as_str().unwrap().to_string();
        assert_eq!(
            s("fedora", "commissaire_install_docker"),
            "dnf install -y docker"
        );
        assert_eq!(s("fedora", "commissaire_upgrade_command"), "dnf update -y");
        assert_eq!(s("rhel", "commissaire_upgrade_command"), "yum update -y");
        assert_eq!(s("RedHat", "commissaire_upgrade_command"), "yum update -y");
        assert!(s("rhel", "commissaire_enable_pkg_repos").starts_with("subscription-manager"));
        assert_eq!(
            s("centos", "commissaire_install_kube"),
            "yum install -y kubernetes-node"
        );
        assert_eq!(s("centos", "commissaire_enable_pkg_repos"), "");
        assert_eq!(
            s("atomic", "commissaire_upgrade_command"),
            "rpm-ostree upgrade"
        );
        assert_eq!(s("atomic", "commissaire_install_flannel"), "true");
        assert_eq!(
            s("fedora", "commissaire_flanneld_config"),
            "/etc/sysconfig/flanneld"
        );
        assert_eq!(
            s("debian", "commissaire_flanneld_config"),
            "/etc/default/flanneld"
        );
        assert!(
            s("ubuntu", "commissaire_install_docker").ends_with("apt-get install -y docker.io")
        );
        assert_eq!(
            s("debian", "commissaire_restart_command"),
            "systemctl reboot"
        );
        assert_eq!(s("debian", "commissaire_kubeproxy_service"), "kube-proxy");
        assert!(is_supported_os("Ubuntu") && !is_supported_os("windows"));
        assert!(!os_vars("windows").contains_key("commissaire_install_docker"));
    }

    #[test]
    fn overrides_win_and_null_removes() {
        let mut o = Map::new();
        o.insert("commissaire_restart_command".into(), "touch /tmp/x".into());
        o.insert("commissaire_enable_pkg_repos".into(), Value::Null);
        o.insert("commissaire_extra".into(), 1.into());
        let v = merged_vars("rhel", &o);
        assert_eq!(v["commissaire_restart_command"], "touch /tmp/x");
        assert!(!v.contains_key("commissaire_enable_pkg_repos"));
        assert_eq!(v["commissaire_extra"], 1);
        assert_eq!(v["commissaire_upgrade_command"], "yum update -y");
    }
}
