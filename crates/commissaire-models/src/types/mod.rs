//! The model structs and their enumerations, one file a concept.

use serde::{Deserialize, Deserializer};

mod audit;
mod cluster;
mod config;
mod gates;
mod host;
mod lists;
mod lock;
mod operation;
mod records;
mod rolling;
mod states;
mod window;

pub use audit::*;
pub use cluster::*;
pub use config::*;
pub use gates::*;
pub use host::*;
pub use lists::*;
pub use lock::*;
pub use operation::*;
pub use records::*;
pub use rolling::*;
pub use states::*;
pub use window::*;

/// Accepts `null` where a string is expected (the docs show `"finished_at": null`).
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}
