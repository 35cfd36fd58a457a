//! Maps a field path (`spec.steps[1].when`) to where it was written.
//!
//! serde_yaml keeps no spans once a document is a value, so lint walks the
//! same text with yaml-rust2's marked events and records the position of
//! every key and sequence item.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Positions of every path of one YAML document.
#[derive(Debug, Default)]
pub struct Positions {
    paths: HashMap<String, Position>,
}

impl Positions {
    /// Indexes a single-document text. On a syntax error the index is empty:
    /// the caller reports the parser's own position instead.
    pub fn index(text: &str) -> Positions {
        let mut recv = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut recv, false).is_err() {
            return Positions::default();
        }
        Positions { paths: recv.paths }
    }

    /// The position of `path`, or of its nearest written ancestor.
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut path = path.to_string();
        loop {
            if let Some(p) = self.paths.get(&path) {
                return Some(*p);
            }
            let cut = path.rfind(['.', '['])?;
            path.truncate(cut);
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<(String, Frame)>,
    paths: HashMap<String, Position>,
}

impl Recorder {
    fn position(mark: Marker) -> Position {
        // yaml-rust2 lines are 1-based, columns 0-based.
        Position {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }

    /// Called for each node; returns the path of the node if it is a value,
    /// None if it was a mapping key (recorded as the pending key).
    fn node_path(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        let Some((base, frame)) = self.stack.last_mut() else {
            return Some(String::new());
        };
        match frame {
            Frame::Map { key } => match key.take() {
                None => {
                    let k = scalar.unwrap_or("?").to_string();
                    let path = join_key(base, &k);
                    self.paths.entry(path).or_insert(Self::position(mark));
                    *key = Some(k);
                    None
                }
                Some(k) => Some(join_key(base, &k)),
            },
            Frame::Seq { next } => {
                let path = format!("{base}[{next}]");
                *next += 1;
                self.paths
                    .entry(path.clone())
                    .or_insert(Self::position(mark));
                Some(path)
            }
        }
    }
}

fn join_key(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.node_path(Some(&value), mark);
            }
            Event::MappingStart(..) => {
                let path = self.node_path(None, mark).unwrap_or_default();
                self.stack.push((path, Frame::Map { key: None }));
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(None, mark).unwrap_or_default();
                self.stack.push((path, Frame::Seq { next: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.node_path(None, mark);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "kind: Playbook\nspec:\n  steps:\n    - action: cordon_node\n      risk: low\n    - {action: scale, when: 'x > 1'}\n";

    #[test]
    fn finds_keys_and_sequence_items() {
        let p = Positions::index(DOC);
        assert_eq!(p.locate("kind"), Some(Position { line: 1, column: 1 }));
        assert_eq!(
            p.locate("spec.steps[0].risk"),
            Some(Position { line: 5, column: 7 })
        );
        assert_eq!(p.locate("spec.steps[1].when").map(|p| p.line), Some(6));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let p = Positions::index(DOC);
        assert_eq!(
            p.locate("spec.steps[1].params.delta").map(|p| p.line),
            Some(6)
        );
        assert_eq!(p.locate("nothing.here"), None);
    }
}
