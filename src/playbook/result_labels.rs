//! Which labels a PromQL query's result can carry, read from the query: a
//! detector's `target` may only name labels its series keep (`sum by
//! (namespace, pod)` drops `container`, and a target naming it never
//! renders).

use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality};
use std::collections::BTreeSet;

/// The labels every result series is limited to, or None when the query
/// keeps its series' own labels (a selector): any label may be there.
pub fn result_labels(expr: &Expr) -> Option<BTreeSet<String>> {
    match expr {
        Expr::Aggregate(a) => match &a.modifier {
            Some(LabelModifier::Include(by)) => {
                let mut kept: BTreeSet<String> = by.labels.iter().cloned().collect();
                // count_values adds its own label.
                if a.op.to_string() == "count_values"
                    && let Some(Expr::StringLiteral(s)) = a.param.as_deref()
                {
                    kept.insert(s.val.clone());
                }
                Some(kept)
            }
            Some(LabelModifier::Exclude(_)) => None,
            // topk/bottomk/limitk keep the series whole.
            None if matches!(
                a.op.to_string().as_str(),
                "topk" | "bottomk" | "limitk" | "limit_ratio"
            ) =>
            {
                result_labels(&a.expr)
            }
            None => Some(BTreeSet::new()),
        },
        Expr::Binary(b) => {
            let (lhs, rhs) = (result_labels(&b.lhs), result_labels(&b.rhs));
            let scalar = |e: &Expr| matches!(e, Expr::NumberLiteral(_)) || is_scalar_call(e);
            if scalar(&b.rhs) {
                return lhs;
            }
            if scalar(&b.lhs) {
                return rhs;
            }
            let card = b.modifier.as_ref().map(|m| &m.card);
            match card {
                Some(VectorMatchCardinality::OneToMany(extra)) => rhs.map(|mut r| {
                    r.extend(extra.labels.iter().cloned());
                    r
                }),
                Some(VectorMatchCardinality::ManyToOne(extra)) => lhs.map(|mut l| {
                    l.extend(extra.labels.iter().cloned());
                    l
                }),
                _ if b.op.to_string() == "or" => match (lhs, rhs) {
                    (Some(mut l), Some(r)) => {
                        l.extend(r);
                        Some(l)
                    }
                    _ => None,
                },
                // One-to-one and `and`/`unless`: the left side's series.
                _ => lhs,
            }
        }
        Expr::Paren(p) => result_labels(&p.expr),
        Expr::Unary(u) => result_labels(&u.expr),
        Expr::Subquery(s) => result_labels(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Some(BTreeSet::new()),
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) | Expr::Extension(_) => None,
        Expr::Call(c) => {
            let args = &c.args.args;
            match c.func.name {
                "vector" | "time" | "scalar" | "pi" => Some(BTreeSet::new()),
                "absent" | "absent_over_time" => Some(BTreeSet::new()),
                "label_replace" | "label_join" => {
                    let inner = args.first().and_then(|a| result_labels(a));
                    let dst = args.get(1).and_then(|a| match a.as_ref() {
                        Expr::StringLiteral(s) => Some(s.val.clone()),
                        _ => None,
                    });
                    match (inner, dst) {
                        (Some(mut l), Some(d)) => {
                            l.insert(d);
                            Some(l)
                        }
                        _ => None,
                    }
                }
                "histogram_quantile" => args.get(1).and_then(|a| result_labels(a)).map(|mut l| {
                    l.remove("le");
                    l
                }),
                // Functions of a value keep the series they are given:
                // the last argument that is a vector or matrix.
                _ => args
                    .iter()
                    .rev()
                    .find(|a| {
                        !matches!(a.as_ref(), Expr::NumberLiteral(_) | Expr::StringLiteral(_))
                    })
                    .and_then(|a| result_labels(a)),
            }
        }
    }
}

fn is_scalar_call(e: &Expr) -> bool {
    matches!(e, Expr::Call(c) if matches!(c.func.name, "scalar" | "time" | "pi"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(q: &str) -> Option<Vec<String>> {
        let e = promql_parser::parser::parse(q).unwrap();
        result_labels(&e).map(|s| s.into_iter().collect())
    }

    fn set(l: &[&str]) -> Option<Vec<String>> {
        Some(l.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn aggregations_keep_only_their_by_labels() {
        assert_eq!(
            labels("sum by (namespace, pod) (rate(x[5m])) > 3"),
            set(&["namespace", "pod"])
        );
        assert_eq!(labels("sum(rate(x[5m]))"), set(&[]));
        assert_eq!(labels("sum without (le) (x)"), None);
        assert_eq!(labels("x{a=\"b\"} > 1"), None);
        assert_eq!(labels("topk(3, sum by (pod) (x))"), set(&["pod"]));
    }

    #[test]
    fn binary_operators_keep_the_side_they_return() {
        assert_eq!(
            labels("max by (node) (a) > 0.9 unless on (node) max by (node, x) (b) > 0"),
            set(&["node"])
        );
        assert_eq!(
            labels(
                "sum by (pod) (a) / on (pod) group_left (container) sum by (pod, container) (b)"
            ),
            set(&["container", "pod"])
        );
        assert_eq!(
            labels("(max by (a) (x)) or (max by (b) (y))"),
            set(&["a", "b"])
        );
        assert_eq!(labels("2 * max by (n) (x)"), set(&["n"]));
    }

    #[test]
    fn functions_keep_or_add_what_they_do() {
        assert_eq!(
            labels("histogram_quantile(0.99, sum by (namespace, pod, le) (rate(h[2m])))"),
            set(&["namespace", "pod"])
        );
        assert_eq!(
            labels("label_replace(sum by (pod) (x), \"node\", \"$1\", \"instance\", \"(.*)\")"),
            set(&["node", "pod"])
        );
        assert_eq!(labels("vector(1)"), set(&[]));
        assert_eq!(labels("deriv(x[15m])"), None);
        assert_eq!(labels("min_over_time(sum by (p) (x)[1h:1m])"), set(&["p"]));
    }
}
