//! Per-record limits: what a single record may cost before it is dead-lettered.

/// Limits applied to every record a parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest record in bytes; a longer one is dead-lettered. Default: 1 MiB.
    pub max_record_bytes: usize,
    /// Most fields kept per event; the rest are dropped and the event tagged
    /// `fields_truncated`. Default: 1024.
    pub max_fields: usize,
    /// Deepest nesting of a JSON record; a deeper one is dead-lettered. Default: 32.
    pub max_depth: usize,
    /// Largest `payload` kept; a longer one is cut and tagged `payload_truncated`.
    /// Default: 1 MiB.
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record_bytes: 1024 * 1024,
            max_fields: 1024,
            max_depth: 32,
            max_payload_bytes: 1024 * 1024,
        }
    }
}
