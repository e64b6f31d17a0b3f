use super::*;

#[test]
fn defaults_are_the_embedded_mode_and_valid() {
    let c = Config::default();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.bus.kind, BusKind::Embedded);
    assert_eq!(c.store.kind, StoreKind::Parquet);
    assert_eq!(c.http.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir, PathBuf::from("./vedette-data"));
}

#[test]
fn empty_file_gives_defaults() -> Result<(), CoreError> {
    assert_eq!(Config::from_toml("", "empty")?, Config::default());
    Ok(())
}

#[test]
fn effective_config_round_trips() -> Result<(), CoreError> {
    let mut c = Config::default();
    c.bus.kind = BusKind::Kafka;
    c.bus.kafka = Some(KafkaConfig {
        brokers: vec!["127.0.0.1:9092".into()],
        topic_prefix: "v".into(),
        group: "g".into(),
        ..KafkaConfig::new(vec!["127.0.0.1:9092".into()])
    });
    let text = c.to_toml()?;
    assert_eq!(Config::from_toml(&text, "round-trip")?, c);
    Ok(())
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = "data_dir = \"/tmp/v\"\n[http]\naddr = \"127.0.0.1:9000\"\nmax_body = 10\n";
    let err = Config::from_toml(text, "bad.toml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("max_body"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.starts_with("bad config: bad.toml"), "{err}");
}

#[test]
fn kafka_kind_needs_its_section() {
    let err = Config::from_toml("[bus]\nkind = \"kafka\"\n", "c")
        .err()
        .map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("bus.kafka: required"));
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        (
            "[bus]\nkind = \"kafka\"\n[bus.kafka]\nbrokers = []\n",
            "bus.kafka.brokers",
        ),
        ("[bus.kafka]\nbrokers = [\"nohost\"]\n", "bus.kafka.brokers"),
        (
            "[store]\nkind = \"clickhouse\"\n[store.clickhouse]\nurl = \"tcp://x\"\n",
            "store.clickhouse.url",
        ),
        (
            "[store.clickhouse]\nurl = \"http://x\"\ndatabase = \"a;drop\"\n",
            "store.clickhouse.database",
        ),
        ("[http]\nmax_body_bytes = 0\n", "http.max_body_bytes"),
        (
            "[bus.embedded]\npartitions = 0\n",
            "bus.embedded.partitions",
        ),
        (
            "[store.parquet]\nretention_days = 0\n",
            "store.parquet.retention_days",
        ),
        (
            "[store.parquet]\nzstd_level = 23\n",
            "store.parquet.zstd_level",
        ),
        (
            "[store.parquet]\nzstd_level = 0\n",
            "store.parquet.zstd_level",
        ),
        ("[alerts.risk]\nthreshold = -1\n", "alerts.risk.threshold"),
        (
            "[alerts.silence]\nafter_seconds = 0\n",
            "alerts.silence.after_seconds",
        ),
        ("[alerts.dedup]\nmax_keys = 0\n", "alerts.dedup.max_keys"),
        ("[http]\naddr = \"not an address\"\n", "addr"),
        ("[bus]\nkind = \"rabbit\"\n", "rabbit"),
    ];
    for (text, key) in cases {
        let err = Config::from_toml(text, "c")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(key),
            "config {text:?} gave {err:?}, expected it to name {key}"
        );
    }
}

/// The example configs shipped in `deploy/` parse and validate.
#[test]
fn example_configs_parse() -> Result<(), CoreError> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let embedded = Config::load(&deploy.join("embedded.toml"))?;
    assert_eq!(embedded.bus.kind, BusKind::Embedded);
    assert_eq!(embedded.store.kind, StoreKind::Parquet);
    let cluster = Config::load(&deploy.join("cluster.toml"))?;
    assert_eq!(cluster.bus.kind, BusKind::Kafka);
    assert_eq!(cluster.store.kind, StoreKind::Clickhouse);
    Ok(())
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = Config::load(Path::new("/nonexistent/vedette.toml"))
        .err()
        .map(|e| e.to_string());
    assert!(err
        .unwrap_or_default()
        .contains("/nonexistent/vedette.toml"));
}

/// Every key of the configuration appears in `docs/configuration.md`.
#[test]
fn every_key_is_documented() -> Result<(), CoreError> {
    fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) if !key.ends_with("properties") => keys(&key, t, out),
                _ => out.push(key),
            }
        }
    }
    let mut c = Config::default();
    c.bus.kafka = Some(KafkaConfig {
        brokers: vec!["b:9092".into()],
        topic_prefix: "v".into(),
        group: "g".into(),
        properties: [("acks".to_string(), "all".to_string())].into(),
        ..KafkaConfig::new(vec![])
    });
    c.store.clickhouse = Some(ClickHouseConfig {
        user: "u".into(),
        password_env: Some("P".into()),
        ..ClickHouseConfig::new("http://c:8123")
    });
    let table: toml::Table =
        toml::from_str(&c.to_toml()?).map_err(|e| CoreError::Internal(e.to_string()))?;
    let mut all = Vec::new();
    keys("", &table, &mut all);
    all.extend(
        [
            "ingest.syslog.tls.addr",
            "ingest.syslog.tls.cert",
            "ingest.syslog.tls.key",
            "ingest.syslog.tls.client_ca",
            "http.tls.cert",
            "http.tls.key",
            "http.tls.client_ca",
            "http.tls.ingest_requires_client_cert",
        ]
        .map(String::from),
    );
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(&doc_path).map_err(|e| CoreError::io("docs", e))?;
    for key in &all {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/configuration.md lacks `{key}`"
        );
    }
    assert!(all.len() > 20, "{all:?}");
    Ok(())
}
