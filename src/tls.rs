//! The process-wide TLS crypto provider. Two of medic's dependencies enable
//! different rustls providers (ring and aws-lc-rs), and rustls then refuses
//! to guess: a kube client built without one installed panics. medic picks
//! ring, once, before any client exists.

/// Installs ring as the default provider; later calls do nothing.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
