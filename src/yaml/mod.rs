//! Reading users' YAML with positions, so every error can say file, line
//! and field.

mod documents;
mod positions;

mod serde_message;

pub use documents::{Document, DocumentError, split_documents};
pub use positions::{Position, Positions};
pub use serde_message::tidy as tidy_serde_message;

/// The largest YAML file medic reads (a fixture with a day of samples is a
/// few MiB). Bigger is refused before parsing, so a runaway file cannot
/// take the memory a healer needs. Alias bombs are refused by the parser's
/// own repetition limit.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads a YAML file of at most `MAX_FILE_BYTES`.
pub fn read_limited(path: &std::path::Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{len} bytes is over the {} MiB limit for a YAML file",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    std::fs::read_to_string(path)
}
