//! The Kubernetes client medic uses everywhere (the adapter, leases,
//! `medic record`): kube's, with a shorter retry. kube retries a 429, 503 or
//! 504 up to 15 times with a backoff that grows to minutes, so one
//! overloaded API server held a cycle, a write or a Lease read for that
//! long. Here a request is retried at most 4 times, 0.1 s to 2 s apart
//! (honouring `Retry-After`): the cycle fails closed and the step escalates.

use super::ClusterError;
use ::kube::client::ClientBuilder;
use ::kube::client::retry::RetryPolicy;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;

/// Retries after the first attempt.
pub const RETRIES: u32 = 4;

pub fn kube_client(mut config: ::kube::Config) -> Result<::kube::Client, ClusterError> {
    config.default_retry = false;
    let policy = RetryPolicy::new(
        Duration::from_millis(100),
        Duration::from_secs(2),
        RETRIES,
        true,
    )
    .map_err(|e| ClusterError::Api(format!("retry policy: {e}")))?;
    let builder = ClientBuilder::try_from(config)
        .map_err(|e| ClusterError::Api(format!("cannot build a Kubernetes client: {e}")))?;
    // Retrying needs a service it can clone: the buffer in front of kube's
    // stack is one (it needs a Tokio runtime, which every caller has).
    let layers = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .layer(BufferLayer::new(1024));
    Ok(builder.with_layer(&layers).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn an_api_server_that_keeps_answering_503_is_asked_five_times_then_given_up() {
        crate::tls::install_crypto_provider();
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "overloaded") }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> =
            kube::Api::all(kube_client(config).unwrap());
        let err = nodes.get("n1").await.unwrap_err();
        assert_eq!(asked.load(Ordering::SeqCst), 1 + RETRIES as usize, "{err}");
    }
}
