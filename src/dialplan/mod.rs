//! Dialplans: the admins' language for numbers, menus and schedules (`docs/dialplans.md`).
//!
//! `load` reads and checks a directory of TOML files into a [`model::Dialplan`]; `navigation`
//! is the sans-IO interpreter a call (or `hotline simulate`) walks it with.

pub mod clock;
pub mod diagnostic;
pub mod load;
pub mod model;
pub mod navigation;
#[cfg(test)]
mod navigation_tests;
pub mod route;
pub mod schedule;
pub mod simulate;
pub mod spoken;

pub use diagnostic::{Diagnostic, Severity};

use crate::media::prompt::PromptStore;

/// One loaded version of the dialplans with the prompts they play; calls keep the version they
/// started with across a reload.
#[derive(Debug, Default)]
pub struct Plan {
    /// The validated dialplan.
    pub dialplan: model::Dialplan,
    /// Its prompts, decoded and encoded once.
    pub prompts: PromptStore,
}
