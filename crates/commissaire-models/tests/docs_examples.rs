//! The JSON shapes of the models, checked against the examples of the original documentation.

use commissaire_models::*;
use serde_json::json;

#[test]
fn host_example_round_trips() {
    let doc = json!({
        "address": "192.168.100.50", "status": "active", "os": "atomic", "cpus": 4,
        "memory": 11989228, "space": 487652, "last_check": "2015-12-17T15:48:18.710454", "source": ""
    });
    let host = Host::from_json(doc.clone()).unwrap();
    assert_eq!(host.status, HostState::Active);
    assert_eq!(host.os, Os::Atomic);
    assert_eq!(host.memory, 11989228);
    assert_eq!(host.to_json(), doc);
    assert_eq!(ModelKind::Host.normalize(doc.clone()).unwrap(), doc);
}

#[test]
fn host_with_external_source_keeps_it() {
    let host = Host::from_json(
        json!({"address": "192.168.100.50", "os": "fedora", "source": "cloudforms"}),
    )
    .unwrap();
    assert_eq!(host.source, "cloudforms");
    assert_eq!(host.status, HostState::New);
}

#[test]
fn host_defaults_fill_missing_members_and_unknown_members_are_dropped() {
    let v = ModelKind::Host
        .normalize(json!({"address": "10.0.0.1", "cluster": "x", "ssh_priv_key": "abc"}))
        .unwrap();
    assert_eq!(
        v,
        json!({"address": "10.0.0.1", "status": "", "os": "", "cpus": 0, "memory": 0, "space": 0, "last_check": "", "source": ""})
    );
}

#[test]
fn bad_enum_values_name_the_member() {
    let err = Host::from_json(json!({"address": "10.0.0.1", "status": "sleeping"})).unwrap_err();
    assert_eq!(err.field(), Some("status"));
    assert!(err.to_string().contains("sleeping"), "{err}");
    let err = Host::from_json(json!({"address": "10.0.0.1", "os": "windows"})).unwrap_err();
    assert_eq!(err.field(), Some("os"));
    let err = Network::from_json(json!({"name": "n", "type": "calico"})).unwrap_err();
    assert_eq!(err.field(), Some("type"));
    assert!(err.to_string().contains("flannel_etcd"), "{err}");
    let err = ContainerManagerConfig::from_json(json!({"name": "c", "type": "mesos"})).unwrap_err();
    assert_eq!(err.field(), Some("type"));
    let err = Host::from_json(json!({"address": "10.0.0.1", "cpus": "four"})).unwrap_err();
    assert_eq!(err.field(), Some("cpus"));
}

#[test]
fn every_documented_status_parses() {
    for s in [
        "investigating",
        "bootstrapping",
        "active",
        "disassociated",
        "failed",
    ] {
        Host::from_json(json!({"address": "h", "status": s})).unwrap();
    }
    for s in ["atomic", "rhel", "centos", "fedora", "debian", "ubuntu"] {
        Host::from_json(json!({"address": "h", "os": s})).unwrap();
    }
    for s in ["ok", "degraded", "failed"] {
        Cluster::from_json(json!({"name": "c", "status": s})).unwrap();
    }
    for s in ["in_process", "finished", "failed"] {
        ClusterUpgrade::from_json(json!({"name": "c", "status": s})).unwrap();
    }
    for s in ["openshift", "kubernetes", "trivial"] {
        ContainerManagerConfig::from_json(json!({"name": "c", "type": s})).unwrap();
    }
}

#[test]
fn addresses_and_names_are_checked() {
    assert_eq!(
        Host::from_json(json!({})).unwrap_err().field(),
        Some("address")
    );
    assert_eq!(
        Host::from_json(json!({"address": "a b"}))
            .unwrap_err()
            .field(),
        Some("address")
    );
    assert_eq!(
        Cluster::from_json(json!({"name": "x/y"}))
            .unwrap_err()
            .field(),
        Some("name")
    );
    assert!(Host::from_json(json!({"address": "fe80::1"})).is_ok());
    assert_eq!(
        Host::from_json(json!({"address": "h", "memory": -1}))
            .unwrap_err()
            .field(),
        Some("memory")
    );
}

#[test]
fn cluster_hides_hostset_and_defaults_network() {
    let c = Cluster::from_json(json!({"name": "mycluster", "container_manager": "prod_openshift"}))
        .unwrap();
    assert_eq!(c.network, "default");
    assert_eq!(
        c.to_safe_json(),
        json!({"name": "mycluster", "status": "", "network": "default", "container_manager": "prod_openshift"})
    );
    assert_eq!(c.to_json()["hostset"], json!([]));
    assert_eq!(ModelKind::Cluster.safe(c.to_json()), c.to_safe_json());
}

#[test]
fn cluster_deploy_example_and_version_required() {
    let d = ClusterDeploy::from_json(json!({
        "name": "c", "status": "in_process", "version": "7.2.6", "deployed": [], "in_process": ["10.0.0.1"],
        "started_at": "2015-12-17T15:48:18.710454", "finished_at": null
    }))
    .unwrap();
    assert_eq!(d.finished_at, "");
    assert_eq!(d.in_process, vec!["10.0.0.1"]);
    assert_eq!(
        ClusterDeploy::from_json(json!({"name": "c"}))
            .unwrap_err()
            .field(),
        Some("version")
    );
    let r = ClusterRestart::from_json(json!({"name": "c"})).unwrap();
    assert_eq!(
        r.to_json(),
        json!({"name": "c", "status": "", "restarted": [], "in_process": [], "started_at": "", "finished_at": ""})
    );
    let u = ClusterUpgrade::from_json(json!({"name": "c"})).unwrap();
    assert_eq!(u.to_json()["upgraded"], json!([]));
}

#[test]
fn network_example_and_flannel_server_needs_address() {
    assert_eq!(
        Network::default_network().to_json(),
        json!({"name": "default", "type": "flannel_etcd", "options": {}})
    );
    let err = Network::from_json(json!({"name": "n", "type": "flannel_server"})).unwrap_err();
    assert_eq!(err.field(), Some("options.address"));
    Network::from_json(
        json!({"name": "n", "type": "flannel_server", "options": {"address": "10.0.0.1:8080"}}),
    )
    .unwrap();
}

#[test]
fn container_manager_example() {
    let cm = ContainerManagerConfig::from_json(json!({
        "name": "prod_openshift", "type": "openshift", "options": {"apiserver": "https://192.168.152.101:8080/api/"}
    }))
    .unwrap();
    assert_eq!(cm.kind, ContainerManagerType::Openshift);
    assert_eq!(
        cm.to_json()["options"]["apiserver"],
        "https://192.168.152.101:8080/api/"
    );
}

#[test]
fn host_creds_default_user_and_debug_redacts_key() {
    let creds =
        HostCreds::from_json(json!({"address": "10.0.0.1", "ssh_priv_key": "c2VjcmV0"})).unwrap();
    assert_eq!(creds.remote_user, "root");
    assert!(!format!("{creds:?}").contains("c2VjcmV0"));
    assert!(ModelKind::HostCreds.is_secret());
}

#[test]
fn host_status_shape() {
    let s = HostStatus::from_json(json!({
        "type": "host_only", "host": {"last_check": "2016-07-29T19:54:57.204671", "status": "active"}, "container_manager": {}
    }))
    .unwrap();
    assert_eq!(s.kind, "host_only");
    assert_eq!(s.to_json()["host"]["status"], "active");
}

#[test]
fn list_models_and_kinds() {
    let hosts = Hosts::from_json(json!({"hosts": [{"address": "a"}, {"address": "b"}]})).unwrap();
    assert_eq!(hosts.hosts.len(), 2);
    for kind in ModelKind::ALL {
        assert_eq!(ModelKind::from_name(kind.name()).unwrap(), *kind);
    }
    assert_eq!(ModelKind::Hosts.item_kind(), Some(ModelKind::Host));
    assert_eq!(
        ModelKind::ContainerManagerConfigs.list_field(),
        Some("container_managers")
    );
    assert!(matches!(
        ModelKind::from_name("Bogus"),
        Err(ModelError::UnknownModel(_))
    ));
    assert_eq!(
        ModelKind::Host
            .primary_key(&json!({"address": "1.2.3.4"}))
            .unwrap(),
        "1.2.3.4"
    );
    assert!(ModelKind::Host.primary_key(&json!({})).is_err());
    assert!(ModelKind::Host.normalize(json!("string")).is_err());
}

#[test]
fn dates_round_trip() {
    let now = now_iso();
    assert!(parse_iso(&now).is_some(), "{now}");
    assert_eq!(now.len(), "2015-12-17T15:48:18.710454".len());
    assert!(WatcherRecord::from_json(json!({"address": "a", "last_check": "yesterday"})).is_err());
}
