//! Reading and writing records on the stack's bus, as the daemons do.

use std::time::Duration;

use serde_json::{Value, json};

use crate::SplitStack;

/// A bus client on the stack's bus (to read records and publish raw messages).
pub async fn bus(stack: &SplitStack) -> commissaire_bus::Bus {
    commissaire_bus::connect(&stack.bus_uri, "commissaire", Duration::from_secs(10))
        .await
        .expect("connect to the stack's bus")
}

/// A record read through `storage.get` (e.g. `("Host", {"address": ...})`).
pub async fn storage_get(
    bus: &commissaire_bus::Bus,
    model: &str,
    key: Value,
) -> Result<Value, commissaire_bus::BusError> {
    bus.request(
        "storage.get",
        json!({"model_type_name": model, "model_json_data": key}),
        Duration::from_secs(5),
    )
    .await
}

/// Saves a record through `storage.save`.
pub async fn storage_save(bus: &commissaire_bus::Bus, model: &str, record: Value) {
    bus.request(
        "storage.save",
        json!({"model_type_name": model, "model_json_data": record}),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("storage.save {model}: {e}"));
}

/// Sets a stored host's status as the investigator would (through storage).
pub async fn set_host_status(bus: &commissaire_bus::Bus, address: &str, status: &str) {
    let mut host = storage_get(bus, "Host", json!({"address": address}))
        .await
        .unwrap_or_else(|e| panic!("host {address}: {e}"));
    host["status"] = json!(status);
    host["os"] = json!("fedora");
    storage_save(bus, "Host", host).await;
}

/// A host bootstrapped earlier: its record (`disassociated`) and
/// credentials written through storage, with no investigation pending (so
/// an investigator of the stack leaves it alone until it joins a cluster).
pub async fn bootstrapped_host(bus: &commissaire_bus::Bus, address: &str) {
    storage_save(
        bus,
        "Host",
        json!({"address": address, "status": "disassociated", "os": "fedora",
               "last_check": commissaire_models::now_iso()}),
    )
    .await;
    storage_save(
        bus,
        "HostCreds",
        json!({"address": address, "ssh_priv_key": crate::key_b64(), "remote_user": "root"}),
    )
    .await;
}
