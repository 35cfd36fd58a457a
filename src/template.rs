//! `{{ name }}` substitution for detector targets and playbook queries.
//!
//! Deliberately not a template language: a value can only be inserted, never
//! computed, so a label from the cluster cannot change a query's shape.
//! Values inserted into PromQL are escaped as string-literal content.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown variable `{name}` in `{template}` (available: {available})")]
    Unknown {
        name: String,
        template: String,
        available: String,
    },
    #[error("unclosed `{{{{` in `{0}`")]
    Unclosed(String),
}

/// How inserted values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As-is: object names.
    None,
    /// Inside a PromQL double-quoted string: backslash and quote escaped.
    Promql,
}

/// Renders `template`, replacing each `{{ var }}` with its value.
pub fn render(
    template: &str,
    vars: &BTreeMap<String, String>,
    escape: Escape,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    render_into(&mut out, template, vars, escape)?;
    Ok(out)
}

/// Appends the rendering of `template` to `out`: a caller rendering many
/// times reuses one buffer.
pub fn render_into(
    out: &mut String,
    template: &str,
    vars: &BTreeMap<String, String>,
    escape: Escape,
) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(template.to_string()))?;
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| TemplateError::Unknown {
            name: name.to_string(),
            template: template.to_string(),
            available: vars.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        match escape {
            Escape::None => out.push_str(value),
            Escape::Promql => {
                for c in value.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(())
}

/// The variable names a template uses, in order.
pub fn variables(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_string(), "prod".to_string()),
            ("pod".to_string(), r#"x"} or vector(1) #"#.to_string()),
        ])
    }

    #[test]
    fn substitutes_and_escapes_for_promql() {
        let q = render(
            r#"up{namespace="{{ namespace }}",pod="{{pod}}"}"#,
            &vars(),
            Escape::Promql,
        )
        .unwrap();
        assert_eq!(q, r#"up{namespace="prod",pod="x\"} or vector(1) #"}"#);
        assert!(promql_parser::parser::parse(&q).is_ok());
    }

    #[test]
    fn unknown_variables_are_errors() {
        let err = render("{{ nope }}", &vars(), Escape::None).unwrap_err();
        assert!(err.to_string().contains("unknown variable `nope`"));
        assert!(render("{{ pod", &vars(), Escape::None).is_err());
        assert_eq!(variables("a {{ x }} b {{y}}"), vec!["x", "y"]);
    }
}
