//! Commissaire storage: store handlers behind one trait ([`StoreHandler`]:
//! etcd v3 and embedded redb), the `storage_handlers` routing of models to
//! handlers by glob and by a record's `source` ([`StorageRouter`]), and the
//! storage service answering `storage.*` on the bus ([`StorageService`]).
//!
//! The etcd handler is the `etcd` feature (on by default; it needs `protoc`
//! to build): the all-in-one leaves it out, so it builds with nothing but a
//! Rust toolchain.
//!
//! Only the storage service (and the all-in-one) links this crate and talks
//! to a store; everything else asks it over the bus with
//! `commissaire-storage-client`.

#[cfg(feature = "etcd")]
mod etcd;
mod params;
mod redb_store;
mod router;
mod secrets;
mod service;
mod store;

#[cfg(feature = "etcd")]
pub use etcd::EtcdStore;
pub use redb_store::RedbStore;
pub use router::{RoutedHandler, RouterError, StorageRouter};
pub use secrets::{SecretBox, SecretError};
pub use service::{StorageService, start, start_with_secrets};
pub use store::{StoreError, StoreHandler, Written, collection, list_prefix, record_key};
