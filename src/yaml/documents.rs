//! Splits a multi-document YAML file into its documents, keeping the line
//! each one starts on so positions inside it can be made file-relative.

/// One `---`-separated document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based index of the document in its file.
    pub index: usize,
    /// Line of the file where the document's text starts (1-based).
    pub first_line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DocumentError {
    pub line: usize,
    pub message: String,
}

/// Splits on lines that are exactly `---` (optionally followed by a comment)
/// and drops documents that hold only comments and blank lines.
pub fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    let flush = |docs: &mut Vec<Document>, current: &mut String, first_line: usize| {
        let has_content = current
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if has_content {
            docs.push(Document {
                index: docs.len(),
                first_line,
                text: std::mem::take(current),
            });
        }
        current.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- #") {
            flush(&mut docs, &mut current, first_line);
            first_line = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(&mut docs, &mut current, first_line);
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_keeps_start_lines() {
        let docs = split_documents("# header\n---\na: 1\n---\n# only a comment\n---\nb: 2\nc: 3\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[0].text, "a: 1\n");
        assert_eq!(docs[1].first_line, 7);
        assert_eq!(docs[1].index, 1);
    }
}
