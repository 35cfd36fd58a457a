//! Series in promtool's `input_series` notation, expanded to samples and
//! written as OpenMetrics for `promtool tsdb create-blocks-from openmetrics`.
//!
//! Values: `a+bxN` and `a-bxN` (N+1 values from a, stepping by b), `axN`
//! (a, N+1 times), `_` (one missing sample), `_xN` (N missing), `stale`
//! (a gap: backfill drops stale markers), and plain numbers.

use crate::model::Timestamp;
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("series `{series}`: {reason}")]
    Selector { series: String, reason: String },
    #[error("values item `{item}`: {reason}")]
    Value { item: String, reason: String },
}

/// One expanded series: a metric name, labels, and a value per sample slot
/// (None where a sample is missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub values: Vec<Option<f64>>,
}

/// Parses `metric{label="value",...}`: a selector with only `=` matchers.
pub fn parse_selector(text: &str) -> Result<(String, BTreeMap<String, String>), SeriesError> {
    let err = |reason: String| SeriesError::Selector {
        series: text.to_string(),
        reason,
    };
    let expr = crate::limits::parse_promql(text).map_err(err)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(err(
            "expected a metric name with labels, e.g. up{job=\"api\"}".into(),
        ));
    };
    let mut labels = BTreeMap::new();
    let mut name = vs.name.clone();
    for m in &vs.matchers.matchers {
        if !matches!(m.op, MatchOp::Equal) {
            return Err(err(format!("label `{}` must use `=`", m.name)));
        }
        if m.name == "__name__" {
            name = Some(m.value.clone());
        } else {
            labels.insert(m.name.clone(), m.value.clone());
        }
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(err("`or` matchers are not a series".into()));
    }
    let name = name.ok_or_else(|| err("no metric name".into()))?;
    Ok((name, labels))
}

/// Expands a values string into one slot per sample, refusing more than
/// `max` samples before allocating them.
pub fn expand_values(text: &str, max: usize) -> Result<Vec<Option<f64>>, SeriesError> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        let err = |reason: &str| SeriesError::Value {
            item: item.to_string(),
            reason: reason.to_string(),
        };
        let fits = |n: usize| out.len().saturating_add(n) <= max;
        if item == "_" || item == "stale" {
            out.push(None);
            continue;
        }
        if let Some(count) = item.strip_prefix("_x") {
            let n: usize = count
                .parse()
                .map_err(|_| err("expected _xN with a whole N"))?;
            if !fits(n) {
                return Err(err(&format!("more than {max} samples")));
            }
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        let Some((expr, times)) = item.rsplit_once('x') else {
            out.push(Some(number(item).ok_or_else(|| err("not a number"))?));
            continue;
        };
        let n: usize = times
            .parse()
            .map_err(|_| err("expected a whole number after `x`"))?;
        if !fits(n.saturating_add(1)) {
            return Err(err(&format!("more than {max} samples")));
        }
        let (start, step) = split_step(expr).ok_or_else(|| err("expected a, a+bxN or a-bxN"))?;
        for i in 0..=n {
            out.push(Some(start + step * i as f64));
        }
    }
    Ok(out)
}

fn number(text: &str) -> Option<f64> {
    match text {
        "Inf" | "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Splits `a+b` / `a-b` at the operator that is neither a leading sign nor
/// part of an exponent (`1e-3`); `a` alone means a step of 0.
fn split_step(expr: &str) -> Option<(f64, f64)> {
    let bytes = expr.as_bytes();
    for i in (1..bytes.len()).rev() {
        let c = bytes[i];
        if (c == b'+' || c == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            let a = number(&expr[..i])?;
            let b = number(&expr[i + 1..])?;
            return Some((a, if c == b'-' { -b } else { b }));
        }
    }
    Some((number(expr)?, 0.0))
}

/// Writes samples in the notation `expand_values` reads, folding runs of
/// equal values into `axN` and of missing samples into `_xN`.
pub fn compress_values(values: &[Option<f64>]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i + 1;
        while j < values.len() && same(values[j], values[i]) {
            j += 1;
        }
        let run = j - i;
        out.push(match (values[i], run) {
            (None, 1) => "_".to_string(),
            (None, n) => format!("_x{n}"),
            (Some(v), 1) => format_value(v),
            (Some(v), n) => format!("{}x{}", format_value(v), n - 1),
        });
        i = j;
    }
    out.join(" ")
}

fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => false,
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Writes all series as one OpenMetrics document, samples `interval` apart
/// from `start`. Series of one metric name are grouped, as the format needs.
pub fn to_openmetrics(series: &[Series], start: Timestamp, interval: i64) -> String {
    let mut sorted: Vec<&Series> = series.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for s in sorted {
        let labels = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect::<Vec<_>>()
            .join(",");
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let ts = start + interval * i as i64;
                let _ = writeln!(out, "{}{{{labels}}} {} {ts}", s.name, format_value(*v));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_promtool_notation() {
        assert_eq!(
            expand_values("1+2x2 _ 5 stale 7x1 _x2 10-1x1", 1000).unwrap(),
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                None,
                Some(5.0),
                None,
                Some(7.0),
                Some(7.0),
                None,
                None,
                Some(10.0),
                Some(9.0)
            ]
        );
    }

    #[test]
    fn handles_exponents_and_signs() {
        assert_eq!(
            expand_values("1.0e9+4e6x1", 1000).unwrap(),
            vec![Some(1.0e9), Some(1.004e9)]
        );
        assert_eq!(
            expand_values("-2+1e-1x1", 1000).unwrap(),
            vec![Some(-2.0), Some(-1.9)]
        );
        assert_eq!(expand_values("-5", 1000).unwrap(), vec![Some(-5.0)]);
        assert_eq!(expand_values("1e-3", 1000).unwrap(), vec![Some(0.001)]);
    }

    #[test]
    fn rejects_bad_items_by_name() {
        let e = expand_values("1 2 abc", 1000).unwrap_err();
        assert_eq!(e.to_string(), "values item `abc`: not a number");
        assert!(expand_values("1+2xq", 1000).is_err());
        assert!(expand_values("_xq", 1000).is_err());
    }

    #[test]
    fn refuses_more_samples_than_allowed_before_allocating_them() {
        assert_eq!(expand_values("1x999", 1000).unwrap().len(), 1000);
        let e = expand_values("1x1000", 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "values item `1x1000`: more than 1000 samples"
        );
        assert!(expand_values("_x99999999999999", 1000).is_err());
        assert!(expand_values("1 _x1000", 1000).is_err());
    }

    #[test]
    fn compress_is_the_inverse_of_expand() {
        let values = vec![
            Some(1.0),
            Some(1.0),
            Some(1.0),
            None,
            None,
            Some(2.5),
            None,
            Some(-3e9),
            Some(-3e9),
        ];
        let text = compress_values(&values);
        assert_eq!(text, "1x2 _x2 2.5 _ -3000000000x1");
        assert_eq!(expand_values(&text, usize::MAX).unwrap(), values);
    }

    #[test]
    fn parses_selectors_and_writes_openmetrics() {
        let (name, labels) = parse_selector(r#"up{job="api",pod="a\"b"}"#).unwrap();
        assert_eq!(name, "up");
        let s = Series {
            name,
            labels,
            values: vec![Some(1.0), None, Some(2.5)],
        };
        assert_eq!(
            to_openmetrics(&[s], 1000, 15),
            "up{job=\"api\",pod=\"a\\\"b\"} 1 1000\nup{job=\"api\",pod=\"a\\\"b\"} 2.5 1030\n# EOF\n"
        );
        assert!(parse_selector(r#"up{job=~"a.*"}"#).is_err());
        assert!(parse_selector("rate(up[5m])").is_err());
    }
}
