//! Prometheus-style durations (`15s`, `1h30m`, `-47m`), held as whole seconds.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error(
        "invalid duration `{0}`: expected a number and a unit (s, m, h, d, w), e.g. 90s, 5m, 1h30m"
    )]
    Invalid(String),
}

/// Parses `[-]<n><unit>...` with units s, m, h, d, w into seconds.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body == "0" {
        return Ok(0);
    }
    let invalid = || DurationError::Invalid(text.to_string());
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut saw_unit = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(invalid()),
        };
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
        digits.clear();
        saw_unit = true;
    }
    if !digits.is_empty() || !saw_unit {
        return Err(invalid());
    }
    Ok(if negative { -total } else { total })
}

/// Formats seconds the way an SRE reads them: `45s`, `12m30s`, `2h5m`.
pub fn format_secs(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let mut s = secs.unsigned_abs();
    if s == 0 {
        return "0s".to_string();
    }
    let mut out = String::from(sign);
    for (unit, size) in [("d", 86_400u64), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{}", s / size, unit));
            s %= size;
        }
    }
    out
}

/// A duration field in YAML: a Prometheus-style string or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Secs(pub i64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_secs(self.0))
    }
}

impl JsonSchema for Secs {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Prometheus-style duration (15s, 5m, 1h30m) or a number of seconds",
            "anyOf": [
                {"type": "string", "pattern": "^-?([0-9]+[smhdw])+$|^0$"},
                {"type": "integer"}
            ]
        })
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_secs(self.0))
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Int(n) => Ok(Secs(n)),
            Raw::Text(t) => parse_duration(&t)
                .map(Secs)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("15s"), Ok(15));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("-47m"), Ok(-2820));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("0"), Ok(0));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["", "5", "m", "5x", "1.5h", "h5", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [0, 45, 750, 5400, 90_061, -2820] {
            assert_eq!(parse_duration(&format_secs(s)), Ok(s));
        }
        assert_eq!(format_secs(750), "12m30s");
    }
}
