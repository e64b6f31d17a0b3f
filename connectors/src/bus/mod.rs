//! The two implementations of [`vedette_core::traits::Bus`]: the embedded durable log
//! (one machine) and Kafka (scale-out), with what they share: how a batch is encoded
//! ([`codec`]) and which partition a row goes to ([`partitioning`]).

pub mod codec;
pub mod embedded;
pub mod kafka;
pub mod partitioning;
