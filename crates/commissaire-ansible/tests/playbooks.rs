//! The playbooks, run with the real `ansible-playbook` against the
//! testbed's sshd hosts.  Every command is overridden with a harmless one
//! writing marker files into a scratch directory, and every remote path
//! points into it (all "hosts" are this machine).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use commissaire_ansible::{
    AnsibleError, HostOutcome, Playbook, PlaybookRunner, Target, merged_vars, os_vars,
};
use common::*;
use serde_json::{Map, Value, json};

#[tokio::test]
async fn check_host_availability_live_and_dead() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let report = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &[target(&host(1)), target("127.0.0.99")],
            Map::new(),
        )
        .await
        .unwrap();
    eprintln!(
        "check_host_availability: {:?}\n{}",
        t0.elapsed(),
        report.output
    );
    assert_eq!(report.hosts[&host(1)], HostOutcome::Ok);
    match &report.hosts["127.0.0.99"] {
        HostOutcome::Unreachable { msg } => assert!(msg.contains("refused"), "{msg}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(report.exit_code, 4);
    assert_eq!(report.failed_hosts(), vec!["127.0.0.99"]);
    assert!(!report.is_success());
    assert_empty(tmp.path());

    // A live host alone: success, exit code 0.
    let report = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &[target(&host(4))],
            Map::new(),
        )
        .await
        .unwrap();
    assert!(report.is_success(), "{}", report.output);
    assert_eq!(report.exit_code, 0);
    assert_empty(tmp.path());
    // No SSH control master outlives the run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "processes left: {left:#?}");
}

#[tokio::test]
async fn bad_keys_make_hosts_unreachable_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let foreign = Target::with_private_key(host(2), "root", &foreign_key(keydir.path()));
    let garbage = Target::with_private_key(host(3), "root", b"this is no private key");
    let report = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &[foreign.clone(), garbage.clone()],
            Map::new(),
        )
        .await
        .unwrap();
    for t in [&foreign, &garbage] {
        match &report.hosts[&t.address] {
            HostOutcome::Unreachable { msg } => {
                assert!(msg.contains("Permission denied"), "{msg}")
            }
            other => panic!("{}: expected Unreachable, got {other:?}", t.address),
        }
        assert!(!report.output.contains(&t.ssh_priv_key_b64));
    }
    assert_eq!(report.exit_code, 4);
    assert_empty(tmp.path());

    // A key that is not even base64: refused before Ansible runs.
    let e = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &[Target::new(host(2), "root", "%%% not base64 %%%")],
            Map::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AnsibleError::KeyFile { .. }), "{e:?}");
    assert_empty(tmp.path());
}

/// Many hosts failing at once, on a busy machine: each still gets ssh's own
/// reason. (Through Ansible alone, with pipelining, a host whose ssh dies
/// while Ansible writes the module to it was reported "Broken pipe" when
/// ssh was not reaped within Ansible's 1 ms grace.)
#[tokio::test]
async fn every_unreachable_host_gets_ssh_s_own_reason_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let keydir = tempfile::tempdir().unwrap();
    let foreign_key = foreign_key(keydir.path());
    let mut targets = vec![target(&host(1))];
    let refused: Vec<String> = (80..100).map(|i| format!("127.0.0.{i}")).collect();
    targets.extend(refused.iter().map(|a| target(a)));
    targets.push(Target::with_private_key(host(2), "root", &foreign_key));
    targets.push(Target::with_private_key(host(3), "root", b"no key at all"));
    // Keep both cores busy while the run connects.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let report = runner(tmp.path())
        .run(Playbook::CheckHostAvailability, &targets, Map::new())
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for b in burners {
        b.join().unwrap();
    }
    let report = report.unwrap();
    assert_eq!(report.hosts[&host(1)], HostOutcome::Ok, "{}", report.output);
    for a in &refused {
        match &report.hosts[a] {
            HostOutcome::Unreachable { msg } => assert!(msg.contains("refused"), "{a}: {msg}"),
            other => panic!("{a}: expected Unreachable, got {other:?}"),
        }
    }
    for a in [host(2), host(3)] {
        match &report.hosts[&a] {
            HostOutcome::Unreachable { msg } => {
                assert!(msg.contains("Permission denied"), "{a}: {msg}")
            }
            other => panic!("{a}: expected Unreachable, got {other:?}"),
        }
    }
    assert_eq!(report.exit_code, 4);
    assert_empty(tmp.path());
}

/// A serial playbook stops at its first unreachable host: the hosts after
/// it are not run, the ones before it are.
#[tokio::test]
async fn a_serial_playbook_stops_at_an_unreachable_host() {
    let tmp = tempfile::tempdir().unwrap();
    let work = scratch();
    let vars = vars(
        work.path(),
        &[
            (
                "commissaire_upgrade_command",
                json!("touch @DIR@/upgraded-{{ inventory_hostname }}"),
            ),
            (
                "commissaire_ostree_booted_path",
                json!("@DIR@/ostree-booted-{{ inventory_hostname }}"),
            ),
        ],
    );
    let targets = [target(&host(1)), target("127.0.0.98"), target(&host(2))];
    let report = runner(tmp.path())
        .run(Playbook::Upgrade, &targets, vars)
        .await
        .unwrap();
    assert_eq!(report.hosts[&host(1)], HostOutcome::Ok, "{}", report.output);
    assert!(
        matches!(&report.hosts["127.0.0.98"], HostOutcome::Unreachable { msg } if msg.contains("refused")),
        "{:?}",
        report.hosts
    );
    assert_eq!(report.hosts[&host(2)], HostOutcome::NotRun);
    assert!(work.path().join(format!("upgraded-{}", host(1))).exists());
    assert!(!work.path().join(format!("upgraded-{}", host(2))).exists());
    assert_eq!(report.exit_code, 4);
    assert_empty(tmp.path());
}

/// Vars for a bootstrap where every command writes a marker
/// `@DIR@/<what>-<host>` and every remote file lands in `@DIR@`.
fn bootstrap_vars(dir: &std::path::Path, extra: &[(&str, Value)]) -> Map<String, Value> {
    let h = "{{ inventory_hostname }}";
    let mut pairs: Vec<(&str, Value)> = vec![];
    let owned: Vec<(String, String)> = vec![
        (
            "commissaire_enable_pkg_repos".into(),
            format!("touch @DIR@/repos-{h}"),
        ),
        (
            "commissaire_install_libselinux_python".into(),
            format!("touch @DIR@/libselinux-{h}"),
        ),
        (
            "commissaire_install_flannel".into(),
            format!("touch @DIR@/install-flannel-{h}"),
        ),
        (
            "commissaire_install_docker".into(),
            format!("touch @DIR@/install-docker-{h}"),
        ),
        (
            "commissaire_install_kube".into(),
            format!("touch @DIR@/install-kube-{h}"),
        ),
        (
            "commissaire_flanneld_config".into(),
            format!("@DIR@/flanneld-{h}"),
        ),
        (
            "commissaire_docker_config".into(),
            format!("@DIR@/docker-{h}"),
        ),
        (
            "commissaire_kubernetes_config".into(),
            format!("@DIR@/kubernetes-config-{h}"),
        ),
        (
            "commissaire_kubeconfig_config".into(),
            format!("@DIR@/kubeconfig-{h}"),
        ),
        (
            "commissaire_kubelet_config".into(),
            format!("@DIR@/kubelet-{h}"),
        ),
        (
            "commissaire_etcd_client_cert_path".into(),
            format!("@DIR@/etcd-client.crt-{h}"),
        ),
        (
            "commissaire_etcd_client_key_path".into(),
            format!("@DIR@/etcd-client.key-{h}"),
        ),
        (
            "commissaire_etcd_ca_path".into(),
            format!("@DIR@/etcd-ca.pem-{h}"),
        ),
        (
            "commissaire_ostree_booted_path".into(),
            "@DIR@/no-such-ostree-booted".into(),
        ),
        (
            "commissaire_service_enable_command".into(),
            format!("sh -c 'touch @DIR@/enable-$0-{h}'"),
        ),
        (
            "commissaire_service_restart_command".into(),
            format!("sh -c 'touch @DIR@/restart-$0-{h}'"),
        ),
        (
            "commissaire_bootstrap_ip".into(),
            "{{ ansible_host }}".into(),
        ),
    ];
    for (k, v) in &owned {
        pairs.push((k.as_str(), Value::String(v.clone())));
    }
    pairs.extend(extra.iter().cloned());
    // Start from the real Debian command set: every command and path in it
    // must be overridden above, or the test would touch the real system.
    let overrides = vars(dir, &pairs);
    for (k, v) in os_vars("debian") {
        if let Some(s) = v.as_str()
            && (s.starts_with('/') || s.contains("apt-get") || s.contains("systemctl"))
        {
            assert!(
                overrides.contains_key(&k) || is_unused(&k),
                "{k} = {s} is not redirected into the scratch dir"
            );
        }
    }
    merged_vars("debian", &overrides)
}

/// Defaults of os_vars a bootstrap does not use (or only with a `*_local`
/// source, which these tests do not give for kubernetes).
fn is_unused(k: &str) -> bool {
    matches!(
        k,
        "commissaire_restart_command"
            | "commissaire_upgrade_command"
            | "commissaire_kubernetes_client_cert_path"
            | "commissaire_kubernetes_client_key_path"
            | "commissaire_kubernetes_ca_path"
            | "commissaire_ostree_upgrade_command"
            | "commissaire_deploy_command"
    )
}

#[tokio::test]
async fn bootstrap_flannel_etcd_with_kubernetes() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let token = "bearer-0123456789-secret";
    let vars = bootstrap_vars(
        d,
        &[
            (
                "commissaire_etcd_server_url",
                json!("http://192.168.152.101:2379"),
            ),
            ("commissaire_flannel_key", json!("/atomic.io/network")),
            (
                "commissaire_kubernetes_api_server_url",
                json!("https://192.168.152.102:8443"),
            ),
            ("commissaire_kubernetes_bearer_token", json!(token)),
            ("commissaire_docker_registry_host", json!("192.168.152.100")),
            ("commissaire_docker_registry_port", json!(8080)),
        ],
    );
    let hosts = [host(1), host(2)];
    let targets: Vec<Target> = hosts.iter().map(|h| target(h)).collect();
    let t0 = Instant::now();
    let report = runner(tmp.path())
        .run(Playbook::Bootstrap, &targets, vars)
        .await
        .unwrap();
    eprintln!("bootstrap (2 hosts): {:?}\n{}", t0.elapsed(), report.output);
    assert!(report.is_success(), "{}", report.output);
    assert!(
        !report.output.contains(token),
        "the token leaked into the output"
    );
    assert_empty(tmp.path());

    for h in &hosts {
        for m in [
            "repos",
            "install-flannel",
            "install-docker",
            "install-kube",
            "libselinux",
        ] {
            assert!(
                d.join(format!("{m}-{h}")).exists(),
                "marker {m}-{h} missing"
            );
        }
        for svc in ["flanneld", "docker", "kubelet", "kube-proxy"] {
            assert!(
                d.join(format!("enable-{svc}-{h}")).exists(),
                "{svc} not enabled on {h}"
            );
            assert!(
                d.join(format!("restart-{svc}-{h}")).exists(),
                "{svc} not restarted on {h}"
            );
        }

        let flannel = read(d.join(format!("flanneld-{h}")));
        assert!(
            flannel.contains("FLANNEL_ETCD_ENDPOINTS=\"http://192.168.152.101:2379\""),
            "{flannel}"
        );
        assert!(
            flannel.contains("FLANNEL_ETCD_PREFIX=\"/atomic.io/network\""),
            "{flannel}"
        );
        assert!(
            flannel.contains("FLANNEL_ETCD=\"http://192.168.152.101:2379\""),
            "{flannel}"
        );
        assert!(
            !flannel.contains("FLANNEL_OPTIONS"),
            "no TLS given: {flannel}"
        );

        let docker = read(d.join(format!("docker-{h}")));
        assert!(
            docker.contains("--registry-mirror=http://192.168.152.100:8080"),
            "{docker}"
        );
        assert!(docker.contains("--log-driver=journald"), "{docker}");

        let kube = read(d.join(format!("kubernetes-config-{h}")));
        assert!(
            kube.contains("KUBE_MASTER=\"--master=https://192.168.152.102:8443\""),
            "{kube}"
        );

        let kc_path = d.join(format!("kubeconfig-{h}"));
        let kc = read(&kc_path);
        assert!(
            kc.contains("server: \"https://192.168.152.102:8443\""),
            "{kc}"
        );
        assert!(kc.contains(&format!("token: \"{token}\"")), "{kc}");
        assert!(!kc.contains("client-certificate"), "{kc}");
        let mode = std::fs::metadata(&kc_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "kubeconfig holds a token");

        let kubelet = read(d.join(format!("kubelet-{h}")));
        assert!(
            kubelet.contains(&format!("--hostname-override={h}")),
            "{kubelet}"
        );
        assert!(
            kubelet.contains(&format!("--kubeconfig={}", kc_path.display())),
            "{kubelet}"
        );
    }
}

#[tokio::test]
async fn bootstrap_flannel_server_with_etcd_tls_and_no_kubernetes() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let local = d.join("local");
    std::fs::create_dir(&local).unwrap();
    for f in ["client.crt", "client.key", "ca.pem"] {
        std::fs::write(local.join(f), format!("local {f}\n")).unwrap();
    }
    let vars = bootstrap_vars(
        d,
        &[
            ("commissaire_flanneld_server", json!("192.168.152.120:8081")),
            (
                "commissaire_etcd_client_cert_path_local",
                json!("@DIR@/local/client.crt"),
            ),
            (
                "commissaire_etcd_client_key_path_local",
                json!("@DIR@/local/client.key"),
            ),
            (
                "commissaire_etcd_ca_path_local",
                json!("@DIR@/local/ca.pem"),
            ),
            // an OS without a repository step
            ("commissaire_enable_pkg_repos", Value::Null),
        ],
    );
    let h = host(3);
    let report = runner(tmp.path())
        .run(Playbook::Bootstrap, &[target(&h)], vars)
        .await
        .unwrap();
    eprintln!(
        "bootstrap flannel_server: {:?}\n{}",
        report.duration, report.output
    );
    assert!(report.is_success(), "{}", report.output);
    assert_empty(tmp.path());

    let flannel = read(d.join(format!("flanneld-{h}")));
    let opts = format!(
        "FLANNEL_OPTIONS=\"--remote=192.168.152.120:8081 --remote-keyfile={d}/etcd-client.key-{h} \
         --remote-certfile={d}/etcd-client.crt-{h} --etcd-cafile={d}/etcd-ca.pem-{h}\"",
        d = d.display()
    );
    assert!(flannel.contains(&opts), "expected {opts} in\n{flannel}");
    assert!(!flannel.contains("FLANNEL_ETCD"), "{flannel}");
    assert_eq!(
        read(d.join(format!("etcd-client.crt-{h}"))),
        "local client.crt\n"
    );
    assert_eq!(
        read(d.join(format!("etcd-client.key-{h}"))),
        "local client.key\n"
    );
    assert_eq!(read(d.join(format!("etcd-ca.pem-{h}"))), "local ca.pem\n");
    let key_mode = std::fs::metadata(d.join(format!("etcd-client.key-{h}")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    // No kubernetes api server: no kube packages, files or services.
    assert!(!d.join(format!("install-kube-{h}")).exists());
    assert!(!d.join(format!("kubernetes-config-{h}")).exists());
    assert!(!d.join(format!("kubeconfig-{h}")).exists());
    assert!(!d.join(format!("enable-kubelet-{h}")).exists());
    assert!(!d.join(format!("repos-{h}")).exists());
    for svc in ["flanneld", "docker"] {
        assert!(
            d.join(format!("restart-{svc}-{h}")).exists(),
            "{svc} not restarted"
        );
    }
}

#[tokio::test]
async fn upgrade_traditional_and_atomic_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let (trad, atomic) = (host(1), host(2));
    // Only the second host looks like an rpm-ostree host.
    std::fs::write(d.join(format!("ostree-booted-{atomic}")), "").unwrap();
    let vars = vars(
        d,
        &[
            (
                "commissaire_upgrade_command",
                json!(
                    "touch @DIR@/upgrade-{{ inventory_hostname }}; \
                     stat -c %a {{ ansible_ssh_private_key_file }} > @DIR@/keymode-{{ inventory_hostname }}"
                ),
            ),
            (
                "commissaire_ostree_upgrade_command",
                json!("touch @DIR@/ostree-upgrade-{{ inventory_hostname }}"),
            ),
            (
                "commissaire_ostree_booted_path",
                json!("@DIR@/ostree-booted-{{ inventory_hostname }}"),
            ),
        ],
    );
    let t0 = Instant::now();
    let report = runner(tmp.path())
        .run(Playbook::Upgrade, &[target(&trad), target(&atomic)], vars)
        .await
        .unwrap();
    eprintln!(
        "upgrade (2 hosts, serial): {:?}\n{}",
        t0.elapsed(),
        report.output
    );
    assert!(report.is_success(), "{}", report.output);
    assert!(d.join(format!("upgrade-{trad}")).exists());
    assert!(!d.join(format!("ostree-upgrade-{trad}")).exists());
    assert!(d.join(format!("ostree-upgrade-{atomic}")).exists());
    assert!(!d.join(format!("upgrade-{atomic}")).exists());
    // While the run was going on, the key file had mode 0600.
    assert_eq!(read(d.join(format!("keymode-{trad}"))).trim(), "600");
    assert_empty(tmp.path());
}

#[tokio::test]
async fn deploy_passes_the_version() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let command = json!("sh -c 'echo \"$0\" > @DIR@/deploy-{{ inventory_hostname }}'");
    let vars = vars(
        d,
        &[
            ("commissaire_deploy_command", command.clone()),
            ("commissaire_deploy_version", json!("25.1.2")),
        ],
    );
    let report = runner(tmp.path())
        .run(
            Playbook::Deploy,
            &[target(&host(3)), target(&host(4))],
            vars,
        )
        .await
        .unwrap();
    eprintln!("deploy: {:?}\n{}", report.duration, report.output);
    assert!(report.is_success(), "{}", report.output);
    for h in [host(3), host(4)] {
        assert_eq!(read(d.join(format!("deploy-{h}"))), "25.1.2\n");
    }
    assert_empty(tmp.path());

    // Without a version: a failure naming the reason, on the first host; the
    // serial play stops there.
    let vars = common::vars(d, &[("commissaire_deploy_command", command)]);
    let report = runner(tmp.path())
        .run(
            Playbook::Deploy,
            &[target(&host(3)), target(&host(4))],
            vars,
        )
        .await
        .unwrap();
    match &report.hosts[&host(3)] {
        HostOutcome::Failed { task, msg } => {
            assert_eq!(task, "Check that a version was given");
            assert!(msg.contains("commissaire_deploy_version"), "{msg}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(report.hosts[&host(4)], HostOutcome::NotRun);
    assert_eq!(report.exit_code, 2);
    assert_empty(tmp.path());
}

#[tokio::test]
async fn a_failing_command_stops_the_rolling_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let d = scratch.path();
    let vars = vars(
        d,
        &[
            (
                "commissaire_upgrade_command",
                json!("echo 'disk full' >&2; exit 3"),
            ),
            ("commissaire_ostree_booted_path", json!("@DIR@/none")),
        ],
    );
    let report = runner(tmp.path())
        .run(
            Playbook::Upgrade,
            &[target(&host(4)), target(&host(3))],
            vars,
        )
        .await
        .unwrap();
    match &report.hosts[&host(4)] {
        HostOutcome::Failed { task, msg } => {
            assert_eq!(task, "Upgrade a traditional host");
            assert!(msg.contains("rc=3") && msg.contains("disk full"), "{msg}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(report.hosts[&host(3)], HostOutcome::NotRun);
    assert_eq!(report.failed_hosts(), vec![host(4).as_str()]);
    assert_eq!(report.exit_code, 2);
    assert!(report.output.contains("disk full"), "{}", report.output);
    assert_empty(tmp.path());
}

fn slow_upgrade_vars(d: &std::path::Path) -> Map<String, Value> {
    vars(
        d,
        &[
            ("commissaire_upgrade_command", json!("sleep 30")),
            ("commissaire_ostree_booted_path", json!("@DIR@/none")),
        ],
    )
}

#[tokio::test]
async fn timeout_kills_ansible_and_removes_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let runner: PlaybookRunner = runner(tmp.path()).with_timeout(Duration::from_secs(6));
    let t0 = Instant::now();
    let e = runner
        .run(
            Playbook::Upgrade,
            &[target(&host(1))],
            slow_upgrade_vars(scratch.path()),
        )
        .await
        .unwrap_err();
    let took = t0.elapsed();
    eprintln!("timeout after {took:?}: {e}");
    match &e {
        AnsibleError::Timeout { after, output, .. } => {
            assert_eq!(*after, Duration::from_secs(6));
            assert!(
                output.contains("TASK [Upgrade a traditional host]"),
                "{output}"
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_empty(tmp.path());
    // ansible-playbook and its workers are gone (their command lines name
    // the run directory under tmp).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "processes left: {left:#?}");
}

#[tokio::test]
async fn dropping_the_run_removes_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = scratch();
    let runner = runner(tmp.path());
    let vars = slow_upgrade_vars(scratch.path());
    let targets = [target(&host(2))];
    let run = runner.run(Playbook::Upgrade, &targets, vars);
    // Cancel the run after 4 s (the future is dropped mid-run).
    let r = tokio::time::timeout(Duration::from_secs(4), run).await;
    assert!(r.is_err(), "the run should still have been going on");
    assert_empty(tmp.path());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = processes_mentioning(&tmp.path().display().to_string());
    assert!(left.is_empty(), "processes left: {left:#?}");
}

#[tokio::test]
async fn missing_playbook_and_no_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = PlaybookRunner::new(empty.path().to_path_buf())
        .with_temp_dir(tmp.path().to_path_buf())
        .run(Playbook::Restart, &[target(&host(1))], Map::new())
        .await
        .unwrap_err();
    assert!(matches!(e, AnsibleError::PlaybookNotFound { .. }), "{e:?}");
    let e = runner(tmp.path())
        .run(Playbook::Restart, &[], Map::new())
        .await
        .unwrap_err();
    assert!(matches!(e, AnsibleError::NoTargets), "{e:?}");
    assert_empty(tmp.path());
}

/// The known_hosts line of test-bed host `address` (its `hostkey.pub`).
fn known_hosts_line(address: &str) -> String {
    let index: u32 = address.rsplit('.').next().unwrap().parse::<u32>().unwrap() - 10;
    let state = std::env::var("COMMISSAIRE_TEST_STATE").expect("COMMISSAIRE_TEST_STATE");
    let public = std::fs::read_to_string(format!("{state}/ssh{index}/hostkey.pub")).unwrap();
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    format!("{address} {}", key.join(" "))
}

#[tokio::test]
async fn a_pinned_host_key_is_verified_by_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, bad) = (host(3), host(4));
    let mut pinned_right = target(&good);
    pinned_right.known_hosts = Some(known_hosts_line(&good));
    // The other host's key: what a reinstalled (or impostor) host shows.
    let mut pinned_wrong = target(&bad);
    pinned_wrong.known_hosts = Some(known_hosts_line(&good).replace(&good, &bad));
    let report = runner(tmp.path())
        .run(
            Playbook::CheckHostAvailability,
            &[pinned_right, pinned_wrong],
            Map::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.hosts[&good], HostOutcome::Ok, "{}", report.output);
    match &report.hosts[&bad] {
        HostOutcome::Unreachable { msg } => {
            assert!(msg.contains("host key") && msg.contains("changed"), "{msg}")
        }
        other => panic!("expected the changed key refused, got {other:?}"),
    }
    assert_empty(tmp.path());
}
