//! Who may call medic's HTTP API. Credentials live in files (a mounted
//! Secret) and are read again whenever the file changes, so a rotated
//! token takes effect without a restart; comparisons take constant time.

use crate::config::{ApiConfig, Mode};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "in enforce mode the Alertmanager webhook needs credentials, or anyone who reaches medic could make it act: set api.webhook.tokenFile (or api.webhook.username and passwordFile), or api.webhook.enabled: false"
    )]
    UnguardedWebhook,
    #[error("api.webhook.username and api.webhook.passwordFile go together: set both or neither")]
    HalfBasicAuth,
    #[error("cannot read the credential file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the credential file {path} is empty")]
    Empty { path: String },
}

/// A secret kept in a file, cached until the file changes. A Kubernetes
/// Secret volume swaps a symlink on update, which changes the file's
/// inode and modification time, so both are compared.
#[derive(Debug)]
pub struct SecretFile {
    path: PathBuf,
    cached: Mutex<Option<(FileStamp, Arc<str>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl SecretFile {
    /// Reads the file now, so a missing or empty secret stops medic at
    /// start rather than at the first request.
    pub fn open(path: impl Into<PathBuf>) -> Result<SecretFile, AuthError> {
        let secret = SecretFile {
            path: path.into(),
            cached: Mutex::new(None),
        };
        secret.current()?;
        Ok(secret)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret as the file holds it now (surrounding whitespace removed).
    pub fn current(&self) -> Result<Arc<str>, AuthError> {
        let read_err = |source| AuthError::Read {
            path: self.path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(read_err)?;
        let stamp = FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: std::os::unix::fs::MetadataExt::ino(&meta),
        };
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, value)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(value.clone());
        }
        let text = std::fs::read_to_string(&self.path).map_err(read_err)?;
        let value: Arc<str> = text.trim().into();
        if value.is_empty() {
            return Err(AuthError::Empty {
                path: self.path.display().to_string(),
            });
        }
        *cached = Some((stamp, value.clone()));
        Ok(value)
    }
}

/// One way in: a bearer token, or a user name and password (HTTP basic).
#[derive(Debug)]
pub enum Credential {
    Bearer(SecretFile),
    Basic {
        username: String,
        password: SecretFile,
    },
}

/// Guards one group of endpoints. With no credential the endpoints are
/// off: every request is refused.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    credentials: Arc<Vec<Credential>>,
    /// How to turn the endpoints on, for the refusal when they are off.
    hint: &'static str,
}

/// The gates of medic's API, from `api` in medic.yaml.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// People's tools: approve/deny, pause/resume, the incidents API.
    pub api: Gate,
    /// Alertmanager; None when the webhook is turned off.
    pub webhook: Option<Gate>,
}

impl Gates {
    /// Reads every credential file now. In enforce mode a webhook without
    /// credentials is refused: medic would act on anyone's POST.
    pub fn from_config(api: &ApiConfig, mode: Mode) -> Result<Gates, AuthError> {
        let mut people = Vec::new();
        if let Some(path) = &api.token_file {
            people.push(Credential::Bearer(SecretFile::open(path)?));
        }
        let hook = &api.webhook;
        let webhook = if hook.enabled {
            let mut creds = Vec::new();
            if let Some(path) = &hook.token_file {
                creds.push(Credential::Bearer(SecretFile::open(path)?));
            }
            match (&hook.username, &hook.password_file) {
                (Some(username), Some(path)) => creds.push(Credential::Basic {
                    username: username.clone(),
                    password: SecretFile::open(path)?,
                }),
                (None, None) => {}
                _ => return Err(AuthError::HalfBasicAuth),
            }
            if creds.is_empty() && mode == Mode::Enforce {
                return Err(AuthError::UnguardedWebhook);
            }
            Some(Gate::new(
                creds,
                "set api.webhook.tokenFile (or username and passwordFile) in medic.yaml",
            ))
        } else {
            None
        };
        Ok(Gates {
            api: Gate::new(people, "set api.tokenFile in medic.yaml"),
            webhook,
        })
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl Gate {
    pub fn new(credentials: Vec<Credential>, hint: &'static str) -> Gate {
        Gate {
            credentials: Arc::new(credentials),
            hint,
        }
    }

    pub fn is_open_to_someone(&self) -> bool {
        !self.credentials.is_empty()
    }

    /// Lets the request in when its `Authorization` header matches any
    /// credential. A secret that can no longer be read lets nobody in.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.credentials.is_empty() {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                reason: format!("this endpoint is off: {}", self.hint),
            });
        }
        let given = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let mut matched = false;
        for credential in self.credentials.iter() {
            match credential_matches(credential, given) {
                Ok(m) => matched |= m,
                Err(e) => {
                    tracing::error!(error = %e, "credential unreadable; refusing requests it guards")
                }
            }
        }
        if matched {
            Ok(())
        } else {
            Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                reason: "missing or wrong credentials".into(),
            })
        }
    }
}

fn credential_matches(credential: &Credential, given: Option<&str>) -> Result<bool, AuthError> {
    let Some(given) = given else {
        return Ok(false);
    };
    let (scheme, value) = given.split_once(' ').unwrap_or((given, ""));
    match credential {
        Credential::Bearer(token) => {
            let expected = token.current()?;
            Ok(scheme.eq_ignore_ascii_case("bearer") && secrets_match(value.trim(), &expected))
        }
        Credential::Basic { username, password } => {
            let expected = password.current()?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Ok(false);
            }
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
                return Ok(false);
            };
            let decoded = String::from_utf8_lossy(&decoded);
            let (user, pass) = decoded.split_once(':').unwrap_or((&decoded, ""));
            // Both compared, always, so timing says nothing about which failed.
            let user_ok = secrets_match(user, username);
            let pass_ok = secrets_match(pass, &expected);
            Ok(user_ok & pass_ok)
        }
    }
}

/// Compares digests of both, so neither content nor length leaks by timing.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    fn secret(dir: &Path, name: &str, value: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, value).unwrap();
        path
    }

    #[test]
    fn secrets_match_only_exactly() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cre", "s3cret"));
        assert!(!secrets_match("", "s3cret"));
        assert!(!secrets_match("s3cret ", "s3cret"));
    }

    #[test]
    fn a_bearer_token_or_basic_auth_lets_in_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(
            vec![
                Credential::Bearer(SecretFile::open(secret(dir.path(), "t", "tok\n")).unwrap()),
                Credential::Basic {
                    username: "am".into(),
                    password: SecretFile::open(secret(dir.path(), "p", "pw")).unwrap(),
                },
            ],
            "",
        );
        assert_eq!(gate.check(&headers("Bearer tok")), Ok(()));
        // base64("am:pw")
        assert_eq!(gate.check(&headers("Basic YW06cHc=")), Ok(()));
        for wrong in ["Bearer to", "Basic tok", "tok", "Basic YW06cHd4", "Bearer "] {
            let refusal = gate.check(&headers(wrong)).unwrap_err();
            assert_eq!(refusal.status, StatusCode::UNAUTHORIZED, "{wrong}");
        }
        assert_eq!(
            gate.check(&HeaderMap::new()).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn a_rotated_token_takes_effect_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret(dir.path(), "t", "old");
        let gate = Gate::new(
            vec![Credential::Bearer(SecretFile::open(&path).unwrap())],
            "",
        );
        assert_eq!(gate.check(&headers("Bearer old")), Ok(()));
        // As a Secret volume updates: a new file renamed over the old one.
        let next = secret(dir.path(), "t.new", "new-token");
        std::fs::rename(&next, &path).unwrap();
        assert!(gate.check(&headers("Bearer old")).is_err());
        assert_eq!(gate.check(&headers("Bearer new-token")), Ok(()));
        // A secret that disappears lets nobody in.
        std::fs::remove_file(&path).unwrap();
        assert!(gate.check(&headers("Bearer new-token")).is_err());
    }

    #[test]
    fn a_gate_without_credentials_is_off() {
        let gate = Gate::new(vec![], "set api.tokenFile");
        let refusal = gate.check(&headers("Bearer anything")).unwrap_err();
        assert_eq!(refusal.status, StatusCode::FORBIDDEN);
        assert!(refusal.reason.contains("set api.tokenFile"));
    }

    #[test]
    fn an_enforcing_medic_does_not_start_with_an_open_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let open = ApiConfig::default();
        assert!(matches!(
            Gates::from_config(&open, Mode::Enforce).unwrap_err(),
            AuthError::UnguardedWebhook
        ));
        // Observing, it starts, but the webhook lets nobody in.
        let gates = Gates::from_config(&open, Mode::Observe).unwrap();
        let hook = gates.webhook.unwrap();
        assert_eq!(
            hook.check(&headers("Bearer x")).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let mut off = ApiConfig::default();
        off.webhook.enabled = false;
        assert!(
            Gates::from_config(&off, Mode::Enforce)
                .unwrap()
                .webhook
                .is_none()
        );
        let mut guarded = ApiConfig::default();
        guarded.webhook.username = Some("am".into());
        assert!(matches!(
            Gates::from_config(&guarded, Mode::Enforce).unwrap_err(),
            AuthError::HalfBasicAuth
        ));
        guarded.webhook.password_file = Some(secret(dir.path(), "pw", "pw").display().to_string());
        let gates = Gates::from_config(&guarded, Mode::Enforce).unwrap();
        assert_eq!(
            gates.webhook.unwrap().check(&headers("Basic YW06cHc=")),
            Ok(())
        );
        // No api.tokenFile: people's endpoints are off.
        assert_eq!(
            gates
                .api
                .check(&headers("Basic YW06cHc="))
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn a_missing_or_empty_secret_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let err = SecretFile::open(dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let empty = secret(dir.path(), "e", "  \n");
        assert!(matches!(
            SecretFile::open(empty).unwrap_err(),
            AuthError::Empty { .. }
        ));
    }
}
