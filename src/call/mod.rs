//! The call controller (B2BUA): callers' calls, the flow they are in, and how they end.

pub mod caller;
pub mod first_flow;
pub mod switch;
#[cfg(test)]
mod switch_tests;

pub use caller::{CallId, Ending, Phase};
pub use switch::{Switch, SwitchConfig, SwitchOutput};
