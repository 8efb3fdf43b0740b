//! The call controller (B2BUA): callers' calls, the dialplan walk they are on, and how they end.

pub mod caller;
pub mod seat_leg;
pub mod switch;
#[cfg(test)]
mod switch_seat_tests;
#[cfg(test)]
mod switch_seat_transfer_tests;
#[cfg(test)]
mod switch_tests;
#[cfg(test)]
mod switch_transfer_tests;
pub mod trunk_leg;

pub use caller::{CallId, Ending, Phase};
pub use switch::{Switch, SwitchConfig, SwitchOutput};
