//! serde_yaml's messages, as medic says them: the place once (the caller
//! prefixes file:line:column), and a "did you mean" for a misspelled field.

/// `unknown field `duratoin`, expected one of `name`, ... at line 4 column 1`
/// becomes "unknown field `duratoin` (did you mean `duration`?); expected one
/// of `name`, ...".
pub fn tidy(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    };
    // serde_yaml starts a nested error with the path to its mapping; the
    // caller names the whole path already.
    let message = match message.split_once(": ") {
        Some((path, rest))
            if !path.is_empty()
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c)) =>
        {
            rest
        }
        _ => message,
    };
    let Some((what, rest)) = ["field", "variant"].iter().find_map(|what| {
        message
            .strip_prefix(&format!("unknown {what} `"))
            .map(|rest| (*what, rest))
    }) else {
        return message.to_string();
    };
    let Some((field, expected)) = rest.split_once("`, expected ") else {
        return message.to_string();
    };
    let known: Vec<&str> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    match crate::model::nearest(field, known) {
        Some(k) => {
            format!("unknown {what} `{field}` (did you mean `{k}`?); expected {expected}")
        }
        None => format!("unknown {what} `{field}`; expected {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn the_place_is_said_once_and_a_near_field_is_suggested() {
        assert_eq!(
            tidy(
                "unknown field `duratoin`, expected one of `name`, `duration`, `series` at line 4 column 1"
            ),
            "unknown field `duratoin` (did you mean `duration`?); expected one of `name`, `duration`, `series`"
        );
        assert_eq!(
            tidy("unknown field `zzz`, expected `mode` or `paused`"),
            "unknown field `zzz`; expected `mode` or `paused`"
        );
        assert_eq!(
            tidy("invalid type: string \"x\", expected u32 at line 2 column 7"),
            "invalid type: string \"x\", expected u32"
        );
        assert_eq!(tidy("something else"), "something else");
        assert_eq!(
            tidy(
                "mode: unknown variant `enforse`, expected `observe` or `enforce` at line 1 column 7"
            ),
            "unknown variant `enforse` (did you mean `enforce`?); expected `observe` or `enforce`"
        );
        assert_eq!(
            tidy(
                "autonomy: unknown field `maxRsk`, expected `maxRisk` or `earn` at line 2 column 12"
            ),
            "unknown field `maxRsk` (did you mean `maxRisk`?); expected `maxRisk` or `earn`"
        );
    }
}
