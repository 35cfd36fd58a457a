pub mod lease_api;
pub mod live;
pub mod nats;
