//! The vocabulary every stage shares: object references, risk, severity, time.

mod duration;
mod object_ref;
mod risk;

pub use duration::{DurationError, Secs, format_secs, parse_duration};
pub use object_ref::{ObjectRef, ObjectRefError};
pub use risk::{Risk, Severity};

/// Unix time in whole seconds. Every stage takes `now` as an argument; only
/// adapters read a clock.
pub type Timestamp = i64;
