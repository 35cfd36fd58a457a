//! The vocabulary every stage shares: object references, risk, severity, time.

mod duration;
mod nearest;
mod object_ref;
mod risk;

pub use duration::{DurationError, Secs, format_secs, parse_duration};
pub use nearest::{edit_distance, nearest};
pub use object_ref::{ObjectRef, ObjectRefError};
pub use risk::{Risk, Severity};

/// Unix time in whole seconds. Every stage takes `now` as an argument; only
/// adapters read a clock.
pub type Timestamp = i64;

/// The wall clock, in unix seconds: read only at the edges (`medic run`,
/// its HTTP handlers); the pure stages take the time as an argument.
pub fn unix_now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as Timestamp)
}
