//! How medic reaches Prometheus in a cluster: URL, auth, headers, TLS.

use super::{MetricsError, PrometheusMetrics};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// The Prometheus (or Thanos, Mimir) base URL.
    pub url: String,
    /// A file holding a bearer token (e.g. a projected ServiceAccount token).
    pub bearer_token_file: Option<String>,
    /// HTTP basic auth: a user name and a file holding the password.
    pub basic_auth: Option<BasicAuth>,
    /// Extra headers on every query (e.g. X-Scope-OrgID for Mimir or Thanos).
    pub headers: BTreeMap<String, String>,
    /// A CA bundle (PEM) to trust for https.
    pub ca_file: Option<String>,
    /// Skip certificate verification. For testing only.
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: String,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://prometheus.monitoring:9090".into(),
            bearer_token_file: None,
            basic_auth: None,
            headers: BTreeMap::new(),
            ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

fn read_secret(path: &str, url: &str) -> Result<String, MetricsError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| MetricsError::Url {
            url: url.to_string(),
            reason: format!("cannot read {path}: {e}"),
        })
}

impl PrometheusMetrics {
    pub fn from_config(c: &PrometheusConfig) -> Result<Self, MetricsError> {
        let bad = |reason: String| MetricsError::Url {
            url: c.url.clone(),
            reason,
        };
        let mut headers = reqwest::header::HeaderMap::new();
        let auth = match (&c.bearer_token_file, &c.basic_auth) {
            (Some(path), _) => Some(format!("Bearer {}", read_secret(path, &c.url)?)),
            (None, Some(b)) => {
                use base64::Engine;
                let password = read_secret(&b.password_file, &c.url)?;
                let pair = format!("{}:{password}", b.username);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            (None, None) => None,
        };
        if let Some(value) = auth {
            let mut v =
                reqwest::header::HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        for (k, v) in &c.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| bad(format!("header `{k}`: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| bad(format!("header `{k}`: {e}")))?;
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(std::time::Duration::from_secs(30))
            .danger_accept_invalid_certs(c.insecure_skip_verify);
        if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|e| bad(format!("{path}: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| bad(e.to_string()))?;
        Self::with_client(http, &c.url)
    }
}
