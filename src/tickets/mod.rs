//! Call records and the ticket store: every call leaves one record, written durably off the
//! call path and exported to the ticket system (`docs/call-records.md`).

pub mod export;
pub mod figures;
pub mod migrations;
pub mod query;
pub mod record;
pub mod store;
pub mod writer;

pub use record::{CallRecord, SCHEMA_VERSION};
