//! hotline: a telephony switching and IVR engine for a city's unified 12345 hotline.
//!
//! The signalling core (`sip`, `sdp`, `call`) is sans-IO: it is driven by `handle_*(now, input)`
//! calls and drained with `poll_*()` until it reports the next timeout. The `server` module is the
//! only place that owns sockets, clocks and threads; `media` owns the RTP worker threads.

pub mod acd;
pub mod api;
pub mod call;
pub mod config;
pub mod deadlines;
pub mod desk;
pub mod dialplan;
pub mod media;
pub mod memory;
pub mod rtp;
pub mod sdp;
pub mod seats;
pub mod server;
pub mod sip;
pub mod tickets;
