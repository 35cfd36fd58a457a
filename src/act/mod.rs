//! Acting on a plan: the action catalog, the executor that runs steps and
//! verifies them, and rollback.

pub mod catalog;
mod executor;
pub mod reference;

pub use catalog::{Action, ActionSpec, CATALOG, TargetKind};
pub use executor::{
    ActionRecord, ActionResult, GuardView, PlanRun, Ports, RunState, StepOutcome, notify,
    send_escalation,
};
