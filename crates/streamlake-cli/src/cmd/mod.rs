//! One file per command.

pub mod config;
pub mod consume;
pub mod datagen;
pub mod demo;
pub mod dev;
pub mod health;
pub mod perf;
pub mod produce;
pub mod schema;
pub mod serve;
pub mod spool;
pub mod topics;
