//! SIP: the message model, wire parsing and printing, transactions and dialogs (RFC 3261).

pub mod fields;
pub mod message;
pub mod uri;

pub use fields::{CSeq, FieldError, Fields, NameAddr, Transport, Via};
pub use message::{HeaderName, Headers, Message, Method, Request, Response};
pub use uri::Uri;
pub mod dialog;
pub mod digest;
pub mod digest_server;
pub mod endpoint;
pub mod framing;
pub mod parse;
pub mod peer;
pub mod print;
pub mod registrar;
pub mod transaction;
pub mod validate;
