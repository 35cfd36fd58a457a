//! Detector and Playbook documents: the model, CEL conditions, lint, and
//! loading (a bad document never half-loads).

mod condition;
mod embedded;
mod library;
mod lint;
mod lint_files;
mod model;
mod result_labels;
pub mod schema;

pub use condition::{
    Condition, ConditionError, EvalContext, IncidentVars, OwnerVars, SignalVars, StepVars,
    TargetVars,
};
pub use embedded::EMBEDDED;
pub use library::{Library, LoadError, embedded_sources, with_builtins};
pub use lint::{Finding, FindingLevel, lint_sources};
pub use lint_files::{FileKind, file_kind, lint_file};
pub use model::{
    Document, Metadata, OnEmpty, Playbook, PlaybookSpec, Step, StepSpec, Trigger, WaitFor,
};

/// The apiVersion of every medic document.
pub const API_VERSION: &str = "medic.dev/v1alpha1";
