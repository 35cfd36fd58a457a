//! Lint: every check a document must pass before medic will load it, each
//! finding naming file, line, column and field.

use super::condition::EvalContext;
use super::model::Document;
use super::{API_VERSION, Condition, Playbook, PlaybookSpec, Step, StepSpec};
use crate::act::catalog::{self, Action, ParamType};
use crate::signal::anomaly::AnomalySpec;
use crate::signal::{Detector, DetectorSpec};
use crate::template::{self, Escape};
use crate::yaml::{Positions, split_documents};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingLevel {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub level: FindingLevel,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The field path inside the document, e.g. `spec.steps[1].when`.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The source line the finding points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            FindingLevel::Error => "error",
            FindingLevel::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {level}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        if let Some(snippet) = &self.snippet {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n {:>gutter$} | {snippet}\n {:>gutter$} | {:>col$}",
                self.line,
                "",
                "^",
                col = self.column
            )?;
        }
        Ok(())
    }
}

/// Collects findings for one document, turning field paths into positions.
struct DocLinter<'a> {
    file: &'a str,
    first_line: usize,
    positions: Positions,
    findings: Vec<Finding>,
}

impl DocLinter<'_> {
    fn push(&mut self, level: FindingLevel, field: &str, message: String, hint: Option<String>) {
        let pos = self.positions.locate(field);
        self.findings.push(Finding {
            level,
            file: self.file.to_string(),
            line: pos.map_or(self.first_line, |p| p.line + self.first_line - 1),
            column: pos.map_or(1, |p| p.column),
            field: field.to_string(),
            message,
            hint,
            snippet: None,
        });
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.push(FindingLevel::Error, field, message.into(), None);
    }

    fn error_hint(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.push(
            FindingLevel::Error,
            field,
            message.into(),
            Some(hint.into()),
        );
    }

    fn warning(&mut self, field: &str, message: impl Into<String>) {
        self.push(FindingLevel::Warning, field, message.into(), None);
    }

    fn condition(&mut self, field: &str, source: Option<&String>) -> Option<Option<Condition>> {
        let Some(source) = source else {
            return Some(None);
        };
        match Condition::compile(source) {
            Ok(c) => {
                if c.is_constant() && c.eval(&EvalContext::default()) == Ok(false) {
                    self.warning(
                        field,
                        format!("`{source}` is always false: this never happens"),
                    );
                }
                // Run it on sample incidents: a misspelled field, a value of
                // the wrong type, a result that is not a bool or a function
                // given a bad argument fails here, not at 3 a.m.
                if let Some((message, hint)) = sample_failure(&c, source) {
                    self.error_hint(field, message, hint);
                    return None;
                }
                Some(Some(c))
            }
            Err(e) => {
                self.error_hint(
                    field,
                    e.to_string(),
                    "variables: signal{name,value,severity,labels,ageSeconds}, target{ref,kind,namespace,name,node,owner{kind,namespace,name,replicas,deployedAgoSeconds}}, incident{id,severity,signals,rootCause}; function target.owner.deployedWithin('1h')",
                );
                None
            }
        }
    }
}

/// One parsed document: a detector or a playbook.
pub(super) enum Parsed {
    Detector(Detector),
    Playbook(Playbook),
}

/// Lints a set of sources (name, YAML text) together: names must be unique
/// across them and triggers must name a detector among them.
pub fn lint_sources(sources: &[(String, String)]) -> (Vec<Detector>, Vec<Playbook>, Vec<Finding>) {
    let mut detectors = Vec::new();
    let mut playbooks: Vec<(Playbook, String, usize, Positions)> = Vec::new();
    // Where each detector was first defined, to name both places of a duplicate.
    let mut detector_at: Vec<(String, String, usize)> = Vec::new();
    let mut findings = Vec::new();
    for (file, text) in sources {
        for doc in split_documents(text) {
            let mut linter = DocLinter {
                file,
                first_line: doc.first_line,
                positions: Positions::index(&doc.text),
                findings: Vec::new(),
            };
            match parse_document(&mut linter, &doc.text) {
                Some(Parsed::Detector(d)) => {
                    if let Some((_, first_file, first_line)) =
                        detector_at.iter().find(|(n, ..)| *n == d.name)
                    {
                        linter.error(
                            "metadata.name",
                            format!(
                                "detector `{}` is defined twice: first at {first_file}:{first_line}",
                                d.name
                            ),
                        );
                    } else {
                        detector_at.push((d.name.clone(), file.clone(), doc.first_line));
                        detectors.push(d);
                    }
                }
                Some(Parsed::Playbook(p)) => {
                    if let Some((_, first_file, first_line, _)) =
                        playbooks.iter().find(|(x, ..)| x.name == p.name)
                    {
                        linter.error(
                            "metadata.name",
                            format!(
                                "playbook `{}` is defined twice: first at {first_file}:{first_line}",
                                p.name
                            ),
                        );
                    } else {
                        playbooks.push((p, file.clone(), doc.first_line, linter.positions));
                        findings.append(&mut linter.findings);
                        continue;
                    }
                }
                None => {}
            }
            findings.append(&mut linter.findings);
        }
    }
    // Cross-document: a trigger on a signal nothing raises never fires.
    // Signals come from detectors and from Alertmanager (kube-prometheus
    // alerts medic maps onto its own signals, or under their own names).
    for (p, file, first_line, positions) in &playbooks {
        let signal = p.spec.trigger.signal.as_str();
        if !detectors.iter().any(|d| d.name == signal) && !crate::signal::raised_by_alerts(signal) {
            let pos = positions.locate("spec.trigger.signal");
            let known: Vec<&str> = detectors.iter().map(|d| d.name.as_str()).collect();
            findings.push(Finding {
                level: FindingLevel::Error,
                file: file.clone(),
                line: pos.map_or(*first_line, |p| p.line + first_line - 1),
                column: pos.map_or(1, |p| p.column),
                field: "spec.trigger.signal".into(),
                message: format!(
                    "no detector named `{}`, and no kube-prometheus alert raises it",
                    p.spec.trigger.signal
                ),
                hint: Some(format!("known detectors: {}", known.join(", "))),
                snippet: None,
            });
        }
    }
    // Cross-document: a step whose action cannot work on what the trigger's
    // detector fires on would fail every time it came up.
    for (p, file, first_line, positions) in &playbooks {
        let Some(d) = detectors.iter().find(|d| d.name == p.spec.trigger.signal) else {
            continue;
        };
        let kind = d.spec.target.kind.as_str();
        let sections = [("spec.steps", &p.steps), ("spec.rollback", &p.rollback)];
        for (section, steps) in sections {
            for (i, step) in steps.iter().enumerate() {
                if let Some(why) = target_mismatch(step.action, kind) {
                    let field = format!("{section}[{i}].action");
                    let pos = positions.locate(&field);
                    findings.push(Finding {
                        level: FindingLevel::Error,
                        file: file.clone(),
                        line: pos.map_or(*first_line, |p| p.line + first_line - 1),
                        column: pos.map_or(1, |p| p.column),
                        field,
                        message: format!(
                            "`{}` {why}; `{}` fires on a {kind}: this step could never run",
                            step.action, d.name
                        ),
                        hint: None,
                        snippet: None,
                    });
                }
            }
        }
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    for f in &mut findings {
        f.snippet = sources
            .iter()
            .find(|(name, _)| name == &f.file)
            .and_then(|(_, text)| text.lines().nth(f.line.saturating_sub(1)))
            .map(|l| l.trim_end().to_string());
    }
    (
        detectors,
        playbooks.into_iter().map(|(p, ..)| p).collect(),
        findings,
    )
}

/// Sample incidents a condition is tried on: an empty one and a full one
/// (both sides of `&&` and `||` get evaluated in one or the other).
fn sample_contexts() -> Vec<EvalContext> {
    let empty = EvalContext::default();
    let mut full = EvalContext::default();
    full.signal.name = "crash_loop".into();
    full.signal.value = 3.0;
    full.signal.severity = "high".into();
    full.signal.age_seconds = 60;
    full.target.reference = "Pod/shop/api-1".into();
    full.target.kind = "Pod".into();
    full.target.namespace = "shop".into();
    full.target.name = "api-1".into();
    full.target.node = "node-a".into();
    full.target.owner.kind = "Deployment".into();
    full.target.owner.namespace = "shop".into();
    full.target.owner.name = "api".into();
    full.target.owner.replicas = 3;
    full.target.owner.deployed_ago_seconds = Some(600);
    full.incident.id = "inc-1".into();
    full.incident.severity = "high".into();
    full.incident.signals = 1;
    vec![empty, full]
}

/// The fields each variable has, for "did you mean".
const FIELDS: &[&str] = &[
    "name",
    "value",
    "severity",
    "labels",
    "ageSeconds",
    "ref",
    "kind",
    "namespace",
    "node",
    "owner",
    "replicas",
    "deployedAgoSeconds",
    "id",
    "signals",
    "rootCause",
];

/// The first failure of `c` on the sample incidents, as (message, hint).
/// A missing key under `labels` is not one: labels differ per series.
fn sample_failure(c: &Condition, source: &str) -> Option<(String, String)> {
    for ctx in sample_contexts() {
        let Err(e) = c.eval(&ctx) else { continue };
        let text = e.to_string();
        if let Some(key) = text
            .split("No such key: ")
            .nth(1)
            .map(|k| k.trim().trim_matches('"'))
        {
            if source.contains(&format!("labels.{key}"))
                || source.contains(&format!("labels[\"{key}\"]"))
                || source.contains(&format!("labels['{key}']"))
            {
                continue;
            }
            let near = FIELDS
                .iter()
                .min_by_key(|f| crate::model::edit_distance(key, f))
                .filter(|f| crate::model::edit_distance(key, f) <= 2)
                .map(|f| format!("did you mean `{f}`?"))
                .unwrap_or_else(|| format!("fields: {}", FIELDS.join(", ")));
            return Some((
                format!("`{source}` reads `{key}`, which no incident has"),
                near,
            ));
        }
        return Some((
            text,
            "conditions are CEL over signal, target and incident; deployedWithin takes a duration such as '1h'".into(),
        ));
    }
    None
}

/// Why `action` cannot work on a signal about an object of `kind`, if it
/// cannot (as `plan` resolves a step's target).
fn target_mismatch(action: crate::act::Action, kind: &str) -> Option<&'static str> {
    use crate::act::TargetKind;
    let workload = [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
    ];
    match action.spec().target {
        TargetKind::Incident => None,
        TargetKind::Pod => (kind != "Pod").then_some("works on a pod"),
        TargetKind::Node => (kind != "Node" && kind != "Pod")
            .then_some("works on a node (the signal's, or its pod's)"),
        TargetKind::Workload => (!workload.contains(&kind))
            .then_some("works on a workload (the signal's, or its pod's owner)"),
        TargetKind::Autoscaler => {
            (kind != "HorizontalPodAutoscaler").then_some("works on a HorizontalPodAutoscaler")
        }
    }
}

fn parse_document(l: &mut DocLinter<'_>, text: &str) -> Option<Parsed> {
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |p| (p.line(), p.column()));
            l.findings.push(Finding {
                level: FindingLevel::Error,
                file: l.file.to_string(),
                line: line + l.first_line - 1,
                column,
                field: String::new(),
                message: format!("not valid YAML: {e}"),
                hint: None,
                snippet: None,
            });
            return None;
        }
    };
    match value.get("apiVersion").and_then(serde_yaml::Value::as_str) {
        Some(API_VERSION) => {}
        Some(other) => l.error(
            "apiVersion",
            format!("unsupported apiVersion `{other}`; expected `{API_VERSION}`"),
        ),
        None => l.error(
            "apiVersion",
            format!("missing apiVersion; expected `{API_VERSION}`"),
        ),
    }
    match value.get("kind").and_then(serde_yaml::Value::as_str) {
        Some("Detector") => deserialize::<DetectorSpec>(l, value).map(|(name, spec)| {
            lint_detector(l, &spec);
            Parsed::Detector(Detector { name, spec })
        }),
        Some("Playbook") => deserialize::<PlaybookSpec>(l, value)
            .and_then(|(name, spec)| lint_playbook(l, name, spec).map(Parsed::Playbook)),
        Some(other) => {
            l.error(
                "kind",
                format!("unknown kind `{other}`; expected Detector or Playbook"),
            );
            None
        }
        None => {
            l.error("kind", "missing kind; expected Detector or Playbook");
            None
        }
    }
}

fn deserialize<S: for<'de> Deserialize<'de>>(
    l: &mut DocLinter<'_>,
    value: serde_yaml::Value,
) -> Option<(String, S)> {
    match serde_path_to_error::deserialize::<_, Document<S>>(value) {
        Ok(doc) => {
            if doc.metadata.name.trim().is_empty() {
                l.error("metadata.name", "name is empty");
                return None;
            }
            Some((doc.metadata.name, doc.spec))
        }
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            l.error(&path, e.into_inner().to_string());
            None
        }
    }
}

fn lint_detector(l: &mut DocLinter<'_>, spec: &DetectorSpec) {
    match crate::limits::parse_promql(&spec.query) {
        Err(e) => l.error("spec.query", format!("PromQL does not parse: {e}")),
        Ok(expr) => {
            if let Some(hold) = &spec.hold_while {
                lint_hold_while(l, hold, super::result_labels::result_labels(&expr).as_ref());
            }
            if spec.anomaly.is_some() && is_threshold(&expr) {
                l.warning(
                    "spec.query",
                    "an anomaly detector's query should return the raw value: a comparison hides the history the baseline is made of",
                );
            }
            // The target may name only labels the result keeps.
            if let Some(kept) = super::result_labels::result_labels(&expr) {
                for (field, text) in [
                    ("spec.target.name", Some(&spec.target.name)),
                    ("spec.target.namespace", spec.target.namespace.as_ref()),
                ] {
                    let Some(text) = text else { continue };
                    for var in crate::template::variables(text) {
                        if !kept.contains(&var) {
                            let have = if kept.is_empty() {
                                "no labels".to_string()
                            } else {
                                kept.iter().cloned().collect::<Vec<_>>().join(", ")
                            };
                            l.error_hint(
                                field,
                                format!("uses `{{{{ {var} }}}}`, but the query's result keeps only {have}: no series would name a target"),
                                format!("keep `{var}` in the query's `by (...)`"),
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some(a) = &spec.anomaly {
        lint_anomaly(l, a);
    }
    for (field, text) in [
        ("spec.target.name", Some(&spec.target.name)),
        ("spec.target.namespace", spec.target.namespace.as_ref()),
    ] {
        if let Some(text) = text
            && text.contains("{{")
            && text.matches("{{").count() != text.matches("}}").count()
        {
            l.error(field, "unbalanced `{{ }}`");
        }
    }
    if spec.for_.0 < 0 || spec.keep_firing_for.0 < 0 {
        l.error("spec.for", "durations cannot be negative");
    }
}

/// `holdWhile` is rendered with the labels a signal fired with and `onset`:
/// it may name only those, and must parse once rendered.
fn lint_hold_while(
    l: &mut DocLinter<'_>,
    hold: &str,
    kept: Option<&std::collections::BTreeSet<String>>,
) {
    let mut vars = std::collections::BTreeMap::new();
    for var in template::variables(hold) {
        let value = if var == "onset" {
            "1700000000"
        } else if kept.is_some_and(|k| !k.contains(&var)) {
            l.error_hint(
                "spec.holdWhile",
                format!("uses `{{{{ {var} }}}}`, which no signal of this detector has: the query's result does not keep it"),
                "name `onset` or a label in the query's `by (...)`".to_string(),
            );
            return;
        } else {
            "x"
        };
        vars.insert(var, value.to_string());
    }
    lint_templated_promql(l, "spec.holdWhile", hold, &vars);
}

/// Renders a templated query with stand-in values and checks that it
/// parses; false (with the error reported at `field`) when it does not.
fn lint_templated_promql(
    l: &mut DocLinter<'_>,
    field: &str,
    text: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> bool {
    let error = match template::render(text, vars, Escape::Promql) {
        Ok(q) => match crate::limits::parse_promql(&q) {
            Ok(_) => return true,
            Err(e) => format!("PromQL does not parse: {e}"),
        },
        Err(e) => e.to_string(),
    };
    l.error(field, error);
    false
}

/// Whether the query's outermost operation is a filtering comparison.
fn is_threshold(expr: &promql_parser::parser::Expr) -> bool {
    use promql_parser::parser::Expr;
    match expr {
        Expr::Paren(p) => is_threshold(&p.expr),
        Expr::Binary(b) => b.op.is_comparison_operator() && !b.return_bool(),
        _ => false,
    }
}

fn lint_anomaly(l: &mut DocLinter<'_>, a: &AnomalySpec) {
    if a.baseline.0 <= 0 {
        l.error(
            "spec.anomaly.baseline",
            "the baseline must be longer than 0s",
        );
    }
    if a.skip.0 < 0 {
        l.error("spec.anomaly.skip", "durations cannot be negative");
    }
    if !(a.sensitivity.is_finite() && a.sensitivity > 0.0) {
        l.error("spec.anomaly.sensitivity", "must be a number above 0");
    }
    if !(a.min_relative_change.is_finite() && a.min_relative_change >= 0.0) {
        l.error(
            "spec.anomaly.minRelativeChange",
            "must be a number of 0 or more",
        );
    }
    if a.min_samples == 0 {
        l.error("spec.anomaly.minSamples", "must be at least 1");
    }
}

fn lint_playbook(l: &mut DocLinter<'_>, name: String, spec: PlaybookSpec) -> Option<Playbook> {
    let trigger_when = l.condition("spec.trigger.when", spec.trigger.when.as_ref());
    if spec.steps.is_empty() {
        l.error("spec.steps", "a playbook needs at least one step");
    }
    let steps = lint_steps(l, "spec.steps", &spec.steps);
    for (i, s) in spec.steps.iter().enumerate() {
        let mutating = Action::from_name(&s.action).is_some_and(|a| a.spec().mutating);
        if mutating && s.risk > spec.max_autonomous_risk {
            l.warning(
                &format!("spec.steps[{i}].risk"),
                format!(
                    "{} risk is above the playbook's maxAutonomousRisk ({}): this step always waits for approval",
                    s.risk, spec.max_autonomous_risk
                ),
            );
        }
    }
    let rollback = lint_steps(
        l,
        "spec.rollback",
        spec.rollback.as_deref().unwrap_or_default(),
    );
    let has_mutating = spec
        .steps
        .iter()
        .filter_map(|s| Action::from_name(&s.action))
        .any(|a| a.spec().mutating);
    if has_mutating && spec.rollback.is_none() {
        l.warning(
            "spec",
            "the playbook changes the cluster but says nothing about rollback (write `rollback: []` if there is nothing to undo)",
        );
    }
    Some(Playbook {
        name,
        trigger_when: trigger_when?,
        steps: steps?,
        rollback: rollback?,
        spec,
    })
}

fn lint_steps(l: &mut DocLinter<'_>, base: &str, specs: &[StepSpec]) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, s) in specs.iter().enumerate() {
        let at = format!("{base}[{i}]");
        match lint_step(l, &at, s) {
            Some(step) => out.push(step),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn lint_step(l: &mut DocLinter<'_>, at: &str, s: &StepSpec) -> Option<Step> {
    let Some(action) = Action::from_name(&s.action) else {
        let hint = match catalog::nearest_action(&s.action) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!(
                "known actions: {}",
                catalog::CATALOG
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        l.error_hint(
            &format!("{at}.action"),
            format!("unknown action `{}`", s.action),
            hint,
        );
        return None;
    };
    let spec = action.spec();
    let mut ok = true;
    if s.risk < spec.floor {
        l.error(
            &format!("{at}.risk"),
            format!(
                "`{}` is at least {} risk; a playbook may rate it higher, never lower (got {})",
                spec.name, spec.floor, s.risk
            ),
        );
        ok = false;
    }
    for (key, value) in &s.params {
        let field = format!("{at}.params.{key}");
        match spec.params.iter().find(|p| p.name == key) {
            None => {
                let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                let hint = if known.is_empty() {
                    format!("`{}` takes no parameters", spec.name)
                } else {
                    format!("`{}` takes: {}", spec.name, known.join(", "))
                };
                l.error_hint(&field, format!("unknown parameter `{key}`"), hint);
                ok = false;
            }
            Some(p) => {
                let fits = match p.kind {
                    ParamType::Integer => value.as_i64().is_some(),
                    ParamType::String => value.as_str().is_some(),
                };
                if !fits {
                    l.error(
                        &field,
                        format!("`{key}` must be {:?}", p.kind).to_lowercase(),
                    );
                    ok = false;
                }
            }
        }
    }
    for p in spec.params.iter().filter(|p| p.required) {
        if !s.params.contains_key(p.name) {
            l.error(
                &format!("{at}.params"),
                format!("`{}` needs parameter `{}`", spec.name, p.name),
            );
            ok = false;
        }
    }
    if action == Action::Scale
        && s.params.contains_key("delta") == s.params.contains_key("replicas")
    {
        l.error(
            &format!("{at}.params"),
            "scale needs exactly one of `delta` and `replicas`",
        );
        ok = false;
    }
    let when = l.condition(&format!("{at}.when"), s.when.as_ref());
    if let Some(w) = &s.wait_for {
        let field = format!("{at}.waitFor.query");
        let mut vars = EvalContext::default().template_vars();
        for v in template::variables(&w.query) {
            if v.starts_with("signal.labels.") {
                vars.insert(v, "x".into());
            }
        }
        ok &= lint_templated_promql(l, &field, &w.query, &vars);
        if w.timeout.0 <= 0 {
            l.error(&format!("{at}.waitFor.timeout"), "timeout must be positive");
            ok = false;
        } else if w.for_.0 > w.timeout.0 {
            l.error(
                &format!("{at}.waitFor.for"),
                "`for` is longer than `timeout`: it can never hold in time",
            );
            ok = false;
        }
    } else if spec.mutating && s.risk >= crate::model::Risk::Medium {
        l.warning(
            at,
            format!(
                "`{}` changes the cluster at {} risk with no waitFor to verify it",
                spec.name, s.risk
            ),
        );
    }
    let when = when?;
    ok.then(|| Step {
        action,
        risk: s.risk,
        when,
        params: s.params.clone(),
        wait_for: s.wait_for.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETECTOR: &str = "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: d}\nspec: {severity: high, query: up == 0, target: {kind: Node, name: '{{ node }}'}}\n";

    fn lint(playbook: &str) -> Vec<Finding> {
        let sources = vec![
            ("d.yaml".to_string(), DETECTOR.to_string()),
            ("p.yaml".to_string(), playbook.to_string()),
        ];
        lint_sources(&sources).2
    }

    #[test]
    fn a_target_naming_a_label_the_query_drops_is_an_error() {
        let sources = vec![(
            "d.yaml".to_string(),
            "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: d}\nspec:\n  severity: high\n  query: sum by (namespace, pod) (x) > 1\n  target: {kind: Pod, namespace: \"{{ namespace }}\", name: \"{{ container }}\"}\n".to_string(),
        )];
        let findings = lint_sources(&sources).2;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            findings[0].to_string().lines().next().unwrap(),
            "d.yaml:7:53: error: spec.target.name: uses `{{ container }}`, but the query's result keeps only namespace, pod: no series would name a target (hint: keep `container` in the query's `by (...)`)"
        );
    }

    #[test]
    fn a_hold_while_naming_a_label_no_signal_has_or_not_parsing_is_an_error() {
        let detector = |hold: &str| {
            vec![(
                "d.yaml".to_string(),
                format!(
                    "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {{name: d}}\nspec:\n  severity: high\n  query: sum by (namespace, pod) (x) > 1\n  target: {{kind: Pod, namespace: \"{{{{ namespace }}}}\", name: \"{{{{ pod }}}}\"}}\n  holdWhile: '{hold}'\n"
                ),
            )]
        };
        let ok = "x{pod=\"{{ pod }}\"} > 2 * x{pod=\"{{ pod }}\"} @ {{ onset }} offset 10m";
        assert_eq!(lint_sources(&detector(ok)).2, vec![]);
        let findings = lint_sources(&detector("x{container=\"{{ container }}\"} > 1")).2;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].to_string().contains(
                "spec.holdWhile: uses `{{ container }}`, which no signal of this detector has"
            ),
            "{}",
            findings[0]
        );
        let findings = lint_sources(&detector("x{pod=\"{{ pod }}\"} >")).2;
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0]
                .to_string()
                .contains("spec.holdWhile: PromQL does not parse"),
            "{}",
            findings[0]
        );
    }

    #[test]
    fn an_action_that_cannot_work_on_the_detectors_target_is_an_error() {
        let node_detector = "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: n}\nspec:\n  severity: high\n  query: max by (node) (x) > 1\n  target: {kind: Node, name: \"{{ node }}\"}\n";
        let playbook = "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: p}\nspec:\n  trigger: {signal: n}\n  maxAutonomousRisk: medium\n  steps:\n    - {action: cordon_node, risk: low}\n    - {action: capture_logs, risk: none}\n  rollback: [{action: rollout_undo, risk: medium}]\n";
        let sources = vec![
            ("n.yaml".to_string(), node_detector.to_string()),
            ("p.yaml".to_string(), playbook.to_string()),
        ];
        let errors: Vec<String> = lint_sources(&sources)
            .2
            .into_iter()
            .filter(|f| f.level == FindingLevel::Error)
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        assert_eq!(
            errors,
            vec![
                "spec.steps[1].action: `capture_logs` works on a pod; `n` fires on a Node: this step could never run",
                "spec.rollback[0].action: `rollout_undo` works on a workload (the signal's, or its pod's owner); `n` fires on a Node: this step could never run",
            ]
        );
    }

    #[test]
    fn conditions_that_would_fail_on_an_incident_are_errors() {
        let with_when = |when: &str| {
            lint(&format!(
                "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {{name: p}}\nspec:\n  trigger: {{signal: d, when: '{}'}}\n  maxAutonomousRisk: none\n  steps: [{{action: escalate, risk: none, params: {{reason: x}}}}]\n  rollback: []\n",
                when.replace('\'', "''")
            ))
            .into_iter()
            .filter(|f| f.level == FindingLevel::Error)
            .map(|f| format!("{} (hint: {})", f.message, f.hint.unwrap_or_default()))
            .collect::<Vec<_>>()
        };
        let one = |when: &str| {
            let errors = with_when(when);
            assert_eq!(errors.len(), 1, "{when}: {errors:?}");
            errors[0].clone()
        };
        assert_eq!(
            one("signal.valeu >= 1"),
            "`signal.valeu >= 1` reads `valeu`, which no incident has (hint: did you mean `value`?)"
        );
        assert!(one("signal.value > \"abc\"").contains("no matching overload"));
        assert!(one("signal.value").contains("not a bool"));
        assert!(
            one("target.owner.deployedWithin(\"1 hour\")").contains("invalid duration `1 hour`")
        );
        // Labels differ per series: reading one is fine.
        assert!(with_when("signal.labels.container == 'app'").is_empty());
        assert!(
            with_when("target.owner.kind == 'Deployment' && target.owner.deployedWithin('1h')")
                .is_empty()
        );
    }

    #[test]
    fn warns_about_legal_but_risky_patterns() {
        let findings = lint(
            "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: p}\nspec:\n  trigger: {signal: d}\n  maxAutonomousRisk: low\n  steps:\n    - {action: drain_node, risk: high}\n  rollback: [{action: uncordon_node, risk: low}]\n",
        );
        let messages: Vec<(FindingLevel, &str, usize)> = findings
            .iter()
            .map(|f| (f.level, f.field.as_str(), f.line))
            .collect();
        assert_eq!(
            messages,
            vec![
                (FindingLevel::Warning, "spec.steps[0]", 8),
                (FindingLevel::Warning, "spec.steps[0].risk", 8),
            ]
        );
        assert!(findings[0].message.contains("no waitFor"));
        assert!(findings[1].message.contains("always waits for approval"));
    }

    #[test]
    fn a_trigger_on_an_unknown_detector_is_an_error() {
        let findings = lint(
            "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: p}\nspec:\n  trigger: {signal: nope}\n  maxAutonomousRisk: low\n  steps: [{action: capture_logs, risk: none}]\n",
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string().lines().next().unwrap(),
            "p.yaml:5:13: error: spec.trigger.signal: no detector named `nope`, and no kube-prometheus alert raises it (hint: known detectors: d)"
        );
    }

    #[test]
    fn a_trigger_on_a_signal_only_alerts_raise_is_fine() {
        for signal in ["node_degraded", "KubeQuotaExceeded"] {
            let findings = lint(&format!(
                "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {{name: p}}\nspec:\n  trigger: {{signal: {signal}}}\n  maxAutonomousRisk: none\n  steps: [{{action: escalate, risk: none, params: {{reason: r}}}}]\n"
            ));
            assert!(findings.is_empty(), "{signal}: {findings:?}");
        }
    }

    #[test]
    fn an_anomaly_block_is_checked_field_by_field() {
        let doc = "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: a}\nspec:\n  severity: high\n  query: rate(x[5m]) > 1\n  target: {kind: Node, name: '{{ node }}'}\n  anomaly:\n    baseline: 0s\n    sensitivity: -1\n    minSamples: 0\n";
        let (_, _, findings) = lint_sources(&[("a.yaml".to_string(), doc.to_string())]);
        let got: Vec<(FindingLevel, &str, usize)> = findings
            .iter()
            .map(|f| (f.level, f.field.as_str(), f.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (FindingLevel::Warning, "spec.query", 6),
                (FindingLevel::Error, "spec.anomaly.baseline", 9),
                (FindingLevel::Error, "spec.anomaly.sensitivity", 10),
                (FindingLevel::Error, "spec.anomaly.minSamples", 11),
            ]
        );
        // Defaults fill in what is left out.
        let ok = "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: a}\nspec:\n  severity: high\n  query: rate(x[5m])\n  target: {kind: Node, name: '{{ node }}'}\n  anomaly: {direction: down}\n";
        let (detectors, _, findings) = lint_sources(&[("a.yaml".to_string(), ok.to_string())]);
        assert!(findings.is_empty(), "{findings:?}");
        let a = detectors[0].spec.anomaly.as_ref().unwrap();
        assert_eq!(a.baseline.0, 3600);
        assert_eq!(a.direction, crate::signal::anomaly::Direction::Down);
    }
}
