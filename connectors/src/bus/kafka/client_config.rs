//! librdkafka settings of Vedette's producer, consumers and admin client, built from
//! `[bus.kafka]`. Properties set in the configuration win over these defaults, except
//! the ones delivery depends on (idempotence, `acks=all`, manual commits), which are
//! always set.

use rdkafka::ClientConfig;
use vedette_core::config::{BusCompression, KafkaConfig};

/// Settings every client shares: brokers, reconnect backoff, user properties.
fn common(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", config.brokers.join(","))
        .set("client.id", "vedette")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "10000")
        .set("socket.keepalive.enable", "true");
    for (k, v) in &config.properties {
        c.set(k, v);
    }
    c
}

/// The producer: idempotent, `acks=all`, compressed, bounded delivery time.
pub(crate) fn producer(config: &KafkaConfig) -> ClientConfig {
    let mut c = common(config);
    let compression = match config.compression {
        BusCompression::None => "none",
        BusCompression::Lz4 => "lz4",
        BusCompression::Zstd => "zstd",
    };
    c.set_default("compression.type", compression);
    c.set_default("linger.ms", "5");
    c.set_default("message.timeout.ms", "60000");
    c.set_default("retry.backoff.ms", "100");
    c.set_default("retry.backoff.max.ms", "2000");
    // Room for the record's own framing above the payload.
    c.set_default(
        "message.max.bytes",
        (config.max_message_bytes + 64 * 1024).to_string(),
    );
    c.set("enable.idempotence", "true").set("acks", "all");
    c
}

/// A consumer of `group`: commits only when told, reads from the oldest record when
/// the group has no commit.
pub(crate) fn consumer(config: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = common(config);
    c.set_default("session.timeout.ms", "10000");
    c.set_default("heartbeat.interval.ms", "1000");
    c.set_default("fetch.wait.max.ms", "100");
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    c
}

/// The admin client (topic creation, metadata).
pub(crate) fn admin(config: &KafkaConfig) -> ClientConfig {
    common(config)
}

trait SetDefault {
    fn set_default(&mut self, key: &str, value: impl Into<String>) -> &mut Self;
}

impl SetDefault for ClientConfig {
    fn set_default(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        if self.get(key).is_none() {
            self.set(key, value);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_settings_cannot_be_overridden() {
        let mut config = KafkaConfig::new(vec!["a:9092".into(), "b:9092".into()]);
        config.properties.insert("acks".into(), "1".into());
        config.properties.insert("linger.ms".into(), "50".into());
        let p = producer(&config);
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("linger.ms"), Some("50"));
        assert_eq!(p.get("bootstrap.servers"), Some("a:9092,b:9092"));
        assert_eq!(p.get("compression.type"), Some("lz4"));
        let c = consumer(&config, "vedette.detect");
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("group.id"), Some("vedette.detect"));
    }
}
