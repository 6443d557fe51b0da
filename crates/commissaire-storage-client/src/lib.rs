//! Typed calls to the storage service over the bus: what the server and
//! every daemon but storage use to read and write records.
//!
//! **API boundary.** Only the storage service (and the all-in-one, which
//! runs it) links the store handlers of `commissaire-storage`; everything
//! else asks over the bus through this crate, so no daemon can open a
//! store (a rule of `ARCHITECTURE.md`, checked by the tidy test).
//!
//! - [`StorageClient`]: `get`, `save`, `delete`, `list`, `swap`, and
//!   [`StorageClient::update`]/[`StorageClient::upsert`], the one
//!   read-modify-write loop ([`UpdateError`] when it did not happen).
//! - [`StorageCallError`]: why a call failed, with a typed
//!   [`StorageCallError::Conflict`] for a lost compare-and-swap.
//! - [`retry_while_unavailable`]: long work waits out a storage outage.

mod client;
mod error;
mod retry;
mod update;

pub use client::{StorageClient, UPDATE_ATTEMPTS};
pub use error::StorageCallError;
pub use retry::retry_while_unavailable;
pub use update::UpdateError;
