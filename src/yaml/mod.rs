//! Reading users' YAML with positions, so every error can say file, line
//! and field.

mod documents;
mod positions;

pub use documents::{Document, DocumentError, split_documents};
pub use positions::{Position, Positions};
