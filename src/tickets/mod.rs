//! Call records and the ticket store: every call leaves one record, written durably off the
//! call path and exported to the ticket system (`docs/call-records.md`).

pub mod record;

pub use record::{CallRecord, SCHEMA_VERSION};
