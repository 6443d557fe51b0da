//! Bus round trips: `storage.get` of one small record, from a client of the
//! bus to a storage service and back. Over AMQP and Redis the service is the
//! split stack's real storage daemon (etcd); in-process it is a storage
//! service in this process on a redb file (what the all-in-one does).

use std::sync::Arc;

use commissaire_bus::{Bus, InProcessBus};
use commissaire_storage::StorageRouter;
use serde_json::json;

use crate::measure;
use crate::report::Row;
use crate::stack::BUS_TIMEOUT;

/// `storage.get` at concurrency 1 and 16, `total` calls each, on `bus`
/// (a storage service must answer it).
pub async fn storage_get_rows(setup: &str, bus: Bus, total: usize) -> anyhow::Result<Vec<Row>> {
    bus.request(
        "storage.save",
        json!({"model_type_name": "Network", "model_json_data": {"name": "bench-bus"}}),
        BUS_TIMEOUT,
    )
    .await?;
    let mut rows = Vec::new();
    for c in [1, 16] {
        let bus = bus.clone();
        let stats = measure::run(total, c, move |_| {
            let bus = bus.clone();
            async move {
                bus.request(
                    "storage.get",
                    json!({"model_type_name": "Network", "model_json_data": {"name": "bench-bus"}}),
                    BUS_TIMEOUT,
                )
                .await?;
                Ok(())
            }
        })
        .await;
        eprintln!("  storage.get c={c}: {:.0} calls/s", stats.rate());
        rows.push(Row::from_stats(
            setup,
            "bus round trip storage.get",
            c,
            &stats,
        ));
    }
    Ok(rows)
}

/// `storage.get` over the in-process bus to a storage service on redb, both
/// in this process.
pub async fn in_process_rows(total: usize) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let router = StorageRouter::from_config(Some(
        &json!({"type": "redb", "path": dir.path().join("bench.redb")}),
    ))
    .await?;
    let bus: Bus = Arc::new(InProcessBus::new());
    let service =
        commissaire_storage::start(router, bus.clone(), commissaire_service::DEFAULT_WORKERS)
            .await?;
    let rows = storage_get_rows("in-process+redb", bus, total).await;
    service.stop();
    rows
}
