//! How deeply a user's expression may nest before medic refuses it.
//!
//! The CEL and PromQL parsers recurse once (or several frames) per level of
//! brackets, and a stack overflow aborts the process: it cannot be caught
//! like an error. A condition or query nested this deep is no playbook
//! anyone writes, so it is refused with a clear error before any parser
//! sees it.

/// Brackets in a CEL condition; real ones rarely pass 4. The CEL parser
/// takes about 170 KiB of stack a level in a debug build (a 2 MiB thread
/// overflows at 12), far less in release: 8 is safe in both.
pub const MAX_CEL_NESTING: usize = 8;
/// Brackets in a PromQL query (selectors, calls, groupings, subqueries).
pub const MAX_PROMQL_NESTING: usize = 32;

/// The deepest nesting of `(`, `[` and `{` in `text`, counting those inside
/// string literals too (conservative: it can only refuse more).
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses PromQL, refusing a query nested deeper than [`MAX_PROMQL_NESTING`].
pub fn parse_promql(text: &str) -> Result<promql_parser::parser::Expr, String> {
    let depth = nesting_depth(text);
    if depth > MAX_PROMQL_NESTING {
        return Err(format!(
            "nested {depth} levels deep; at most {MAX_PROMQL_NESTING} are allowed"
        ));
    }
    promql_parser::parser::parse(text).map_err(|e| e.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_every_kind_of_bracket() {
        assert_eq!(nesting_depth("sum(rate(x{a=\"b\"}[5m]))"), 3);
        assert_eq!(nesting_depth("a)))(("), 2);
        assert_eq!(nesting_depth(""), 0);
    }

    #[test]
    fn a_query_nested_too_deep_is_refused_before_parsing() {
        let deep = format!("{}x{}", "(".repeat(200), ")".repeat(200));
        let err = parse_promql(&deep).unwrap_err();
        assert!(err.contains("nested 200 levels deep"), "{err}");
        // At the limit it still parses (and does not overflow a test thread).
        let ok = format!(
            "{}x{}",
            "(".repeat(MAX_PROMQL_NESTING),
            ")".repeat(MAX_PROMQL_NESTING)
        );
        assert!(parse_promql(&ok).is_ok());
    }
}
