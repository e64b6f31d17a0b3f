//! The two implementations of [`vedette_core::traits::Bus`]: the embedded durable log
//! (one machine) and Kafka (scale-out), with what they share: how a batch is encoded
//! ([`codec`]) and which partition a row goes to ([`partitioning`]).

pub mod codec;
pub mod embedded;
pub mod kafka;
pub mod partitioning;
mod take_rows;

/// Locks a mutex, taking the data of a poisoned one (a panic elsewhere must not stop the
/// bus; every structure guarded here stays consistent between statements).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
