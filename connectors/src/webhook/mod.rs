//! Webhooks out: alerts POSTed to responders (SOAR, chat, ticketing), each delivery
//! signed (HMAC-SHA256 over timestamp and body, see [`sign`]) and carrying an
//! idempotency key, retried with exponential backoff and jitter ([`backoff`]).
//!
//! This module sends one attempt at a time ([`WebhookClient::send`]) and says whether
//! it is worth another; the durable outbox, the filters and the dead letters are the
//! service's respond stage.

pub mod backoff;
mod client;
pub mod payload;
pub mod sign;

pub use client::{Attempt, AttemptOutcome, WebhookClient};

#[cfg(test)]
mod tests;
