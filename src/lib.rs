//! medic: an in-cluster healer for Kubernetes.
//!
//! Detectors query Prometheus; signals are correlated into incidents; a
//! diagnosis names the likely root cause; a playbook's steps run within the
//! autonomy bounds, and anything riskier is escalated to people.
//!
//! The stages that decide (signal tracking, correlation, ranking, diagnosis,
//! planning, policy) are pure and take the time as an argument. I/O is behind
//! the ports in `metrics`, `cluster` and `escalate`.

pub mod act;
pub mod bench;
pub mod cluster;
pub mod config;
pub mod diagnose;
pub mod engine;
pub mod escalate;
pub mod fuzz;
pub mod guard;
pub mod ha;
pub mod import;
pub mod incident;
pub mod journal;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod playbook;
pub mod replay;
pub mod run;
pub mod signal;
pub mod synth;
pub mod telemetry;
pub mod template;
pub mod tls;
pub mod trust;
pub mod yaml;
