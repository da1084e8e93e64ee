//! A client for Confluent-compatible Schema Registries.
//!
//! # Guarantees
//! - Schemas and ids are cached: after the first use of a schema, producing and consuming with
//!   it makes no registry call, so a registry outage after warm-up does not stop either.
//! - Several URLs may be given; a request that cannot reach one tries the next.
//! - Registry refusals (an incompatible schema, an unknown subject) come back with the
//!   registry's own reason and error code.

mod client;
mod error;
mod subject;

pub use client::{Compatibility, Reference, RegisteredSchema, Registry, SchemaType};
pub use error::RegistryError;
pub use subject::{subject_name, Role};
