pub mod live;
pub mod nats;
