//! The media plane: RTP legs on paced worker threads, prompts, DTMF, bridges, conferences and
//! call recording.

pub mod codec;
pub mod control;
pub mod dtmf_tone;
pub mod g711;
pub mod leg;
pub mod mixer;
pub mod plane;
pub mod ports;
pub mod prompt;
pub mod realtime;
pub mod recorder;
pub mod relay;
pub mod ticker;
pub mod worker;
