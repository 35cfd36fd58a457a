//! CEL conditions over an incident: trigger `when` and step `when`.
//!
//! A condition sees three variables, `signal`, `target` and `incident`, and
//! one extra function, `deployedWithin(duration)` on `target.owner`. An
//! expression that fails to evaluate is an error, never `false`: the caller
//! decides what not knowing means (for a step: escalate).

use crate::model::parse_duration;
use cel::extractors::This;
use cel::objects::Key;
use cel::{Context, ExecutionError, Program, ResolveResult, Value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const VARIABLES: &[&str] = &["signal", "target", "incident"];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    #[error("CEL does not parse: {0}")]
    Parse(String),
    #[error("unknown variable `{name}` (available: signal, target, incident)")]
    UnknownVariable { name: String },
    #[error("`{source_text}` failed: {reason}")]
    Eval { source_text: String, reason: String },
    #[error("`{source_text}` gave {got}, not a bool")]
    NotBool { source_text: String, got: String },
}

#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

/// What a condition can read about the incident, as CEL values.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalContext {
    pub signal: SignalVars,
    pub target: TargetVars,
    pub incident: IncidentVars,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalVars {
    pub name: String,
    pub value: f64,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// Seconds the signal has been firing.
    pub age_seconds: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetVars {
    /// The signal's target, e.g. `Pod/production/api-1`.
    #[serde(rename = "ref")]
    pub reference: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The node the target is or runs on; empty when unknown.
    pub node: String,
    pub owner: OwnerVars,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerVars {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub replicas: i64,
    /// Seconds since the owner's last deploy, when one is known.
    pub deployed_ago_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentVars {
    pub id: String,
    pub severity: String,
    pub signals: i64,
    pub root_cause: String,
}

/// The `{{ name }}` variables a waitFor query may use, from the same context.
pub type StepVars = BTreeMap<String, String>;

impl EvalContext {
    pub fn template_vars(&self) -> StepVars {
        let t = &self.target;
        let mut vars = StepVars::from([
            ("signal.name".into(), self.signal.name.clone()),
            ("target.ref".into(), t.reference.clone()),
            ("target.kind".into(), t.kind.clone()),
            ("target.namespace".into(), t.namespace.clone()),
            ("target.name".into(), t.name.clone()),
            ("target.node".into(), t.node.clone()),
            ("target.owner.kind".into(), t.owner.kind.clone()),
            ("target.owner.namespace".into(), t.owner.namespace.clone()),
            ("target.owner.name".into(), t.owner.name.clone()),
            ("incident.id".into(), self.incident.id.clone()),
        ]);
        for (k, v) in &self.signal.labels {
            vars.insert(format!("signal.labels.{k}"), v.clone());
        }
        vars
    }
}

fn deployed_within(This(owner): This<Value>, window: Arc<String>) -> ResolveResult {
    let limit = parse_duration(&window)
        .map_err(|e| ExecutionError::function_error("deployedWithin", e.to_string()))?;
    let Value::Map(map) = owner else {
        return Err(ExecutionError::function_error(
            "deployedWithin",
            "call it on target.owner",
        ));
    };
    let ago = map.get(&Key::from("deployedAgoSeconds"));
    Ok(Value::Bool(
        matches!(ago, Some(Value::Int(s)) if *s >= 0 && *s <= limit),
    ))
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, ConditionError> {
        let depth = crate::limits::nesting_depth(source);
        if depth > crate::limits::MAX_CEL_NESTING {
            return Err(ConditionError::Parse(format!(
                "nested {depth} levels deep; at most {} are allowed",
                crate::limits::MAX_CEL_NESTING
            )));
        }
        let program = Program::compile(source).map_err(|e| ConditionError::Parse(e.to_string()))?;
        let refs = program.references();
        let mut vars = refs.variables();
        vars.sort();
        if let Some(name) = vars.into_iter().find(|v| !VARIABLES.contains(v)) {
            return Err(ConditionError::UnknownVariable {
                name: name.to_string(),
            });
        }
        Ok(Condition {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    /// Whether it reads no variable, so its value never changes.
    pub fn is_constant(&self) -> bool {
        self.program.references().variables().is_empty()
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval(&self, ctx: &EvalContext) -> Result<bool, ConditionError> {
        let eval_err = |reason: String| ConditionError::Eval {
            source_text: self.source.clone(),
            reason,
        };
        let mut context = Context::default();
        context
            .add_function("deployedWithin", deployed_within)
            .map_err(|e| eval_err(format!("{e:?}")))?;
        for (name, value) in [
            ("signal", cel::to_value(&ctx.signal)),
            ("target", cel::to_value(&ctx.target)),
            ("incident", cel::to_value(&ctx.incident)),
        ] {
            let value = value.map_err(|e| eval_err(e.to_string()))?;
            context.add_variable_from_value(name, value);
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(ConditionError::NotBool {
                source_text: self.source.clone(),
                got: format!("{other:?}"),
            }),
            Err(e) => Err(eval_err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(deployed_ago: Option<i64>) -> EvalContext {
        EvalContext {
            signal: SignalVars {
                name: "crash_loop".into(),
                value: 6.0,
                severity: "high".into(),
                ..Default::default()
            },
            target: TargetVars {
                kind: "Pod".into(),
                owner: OwnerVars {
                    kind: "Deployment".into(),
                    name: "api".into(),
                    deployed_ago_seconds: deployed_ago,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn evaluates_over_the_incident() {
        let c = Condition::compile("signal.value > 5 && target.owner.name == 'api'").unwrap();
        assert_eq!(c.eval(&ctx(None)), Ok(true));
    }

    #[test]
    fn deployed_within_is_false_without_a_known_deploy() {
        let c = Condition::compile("target.owner.deployedWithin('1h')").unwrap();
        assert_eq!(c.eval(&ctx(Some(47 * 60))), Ok(true));
        assert_eq!(c.eval(&ctx(Some(2 * 3600))), Ok(false));
        assert_eq!(c.eval(&ctx(None)), Ok(false));
        let bad = Condition::compile("target.owner.deployedWithin('soon')").unwrap();
        assert!(bad.eval(&ctx(Some(1))).is_err());
    }

    #[test]
    fn rejects_unknown_variables_and_non_bools() {
        assert_eq!(
            Condition::compile("tagret.kind == 'Pod'").unwrap_err(),
            ConditionError::UnknownVariable {
                name: "tagret".into()
            }
        );
        assert!(matches!(
            Condition::compile("signal.value >"),
            Err(ConditionError::Parse(_))
        ));
        let c = Condition::compile("signal.value").unwrap();
        assert!(matches!(
            c.eval(&ctx(None)),
            Err(ConditionError::NotBool { .. })
        ));
        let c = Condition::compile("signal.nope > 1").unwrap();
        assert!(matches!(
            c.eval(&ctx(None)),
            Err(ConditionError::Eval { .. })
        ));
    }

    #[test]
    fn a_condition_nested_too_deep_is_refused_not_a_stack_overflow() {
        let n = crate::limits::MAX_CEL_NESTING;
        let at_limit = format!("{}signal.value > 1{}", "(".repeat(n), ")".repeat(n));
        assert!(Condition::compile(&at_limit).is_ok());
        let deeper = format!("{}signal.value > 1{}", "(".repeat(60), ")".repeat(60));
        assert!(
            matches!(Condition::compile(&deeper), Err(ConditionError::Parse(m)) if m.contains("nested 60 levels deep"))
        );
    }
}
