//! `vedette run`: load config, take the data folder, start the inputs and the ingest
//! stage, serve the HTTP API until SIGINT/SIGTERM, then stop the inputs and flush.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;
use vedette_connectors::file::{FileInput, Positions};
use vedette_connectors::stdin::STDIN_SOURCE;
use vedette_connectors::syslog::{self, TCP_SOURCE, TLS_SOURCE, UDP_SOURCE};
use vedette_core::config::{BusKind, Config, StoreKind};
use vedette_core::traits::Source;
use vedette_detect::baseline::BaselineEngine;
use vedette_ingest::{Format, Limits};

use crate::alert_flow::{load_baselines, AlertFlow, LiveBaselines};
use crate::audit_log::{self, AuditLog};
use crate::bus_setup::open_bus;
use crate::bus_sink::BusSink;
use crate::cli::RunArgs;
use crate::data_dir::DataDir;
use crate::detect_stage::DetectStage;
use crate::health_history::HealthHistory;
use crate::http::{self, AppState, Auth, HttpAlerts, HttpIngest, HttpQuery, RateLimit};
use crate::ingest::{shared_parser, IngestStage};
use crate::live_rules::LiveRules;
use crate::metrics::Metrics;
use crate::respond::delivery::Responder;
use crate::respond::RespondStage;
use crate::store_setup::open_store;
use crate::store_stage::StoreStage;
use crate::suppressions::Suppressions;
use crate::tokens::{AdminBootstrap, TokenStore};
use crate::yara_setup::LiveYara;
use vedette_storage::QueryLimits;

/// Chunks buffered between the transports and the ingest stage.
const CHUNK_QUEUE: usize = 1024;

/// The effective configuration: the file (or defaults) with the flags applied.
fn effective_config(args: &RunArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(addr) = args.http_addr {
        config.http.addr = addr;
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("bad config: {e}"))?;
    Ok(config)
}

/// Runs the service until a shutdown signal; returns once it has stopped cleanly.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = effective_config(&args)?;
    let stdin_format = args
        .stdin
        .as_deref()
        .map(|f| {
            f.parse::<Format>()
                .map_err(|e| anyhow::anyhow!("--stdin: {e}"))
        })
        .transpose()?;
    crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vedette-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, stdin_format))
}

fn format_of(name: &str, key: &str) -> anyhow::Result<Format> {
    name.parse()
        .map_err(|e| anyhow::anyhow!("bad config: {key}: {e}"))
}

async fn serve(config: Config, stdin_format: Option<Format>) -> anyhow::Result<()> {
    let data_dir = DataDir::open(&config.data_dir)?;
    crate::event_id_key::use_event_id_key(&config, data_dir.path())?;
    let tokens = Arc::new(TokenStore::new(data_dir.path()));
    let first_admin = bootstrap_admin(&tokens)?;
    let metrics = Metrics::new();
    let cancel = CancellationToken::new();
    let (bus, log) = open_bus(&config.bus, data_dir.path(), &metrics, &cancel).await?;
    let rules = LiveRules::load(&config.rules, &data_dir.path().join("rules"))
        .context("loading the detection rules")?;
    let store = open_store(&config, QueryLimits::default()).await?;
    let suppressions = Arc::new(Suppressions::default());
    let marks = suppressions
        .load(store.as_ref())
        .await
        .context("loading the false-positive marks")?;
    info!(marks, "false-positive marks loaded");
    let refresh = suppressions
        .clone()
        .spawn_refresh(store.clone(), cancel.clone());
    let (audit, audit_writer) = AuditLog::start(store.clone(), metrics.clone());
    if let Some(id) = first_admin {
        let mut r = audit_log::record_by("system", "", None, "token.create", "ok");
        r.target = Some(id);
        r.detail = Some("first admin token".into());
        audit.record(r);
    }
    let baselines = if config.alerts.baselines.enabled {
        load_baselines(config.rules.bundled, &config.rules.baseline_dirs)
            .context("loading the baselines")?
    } else {
        Default::default()
    };
    info!(
        baselines = baselines.defs.len(),
        skipped = baselines.errors.len(),
        "baselines loaded"
    );
    let checkpoint = data_dir.path().join("baselines").join("state.json");
    let live_baselines = config.alerts.baselines.enabled.then(|| {
        LiveBaselines::new(
            config.rules.bundled,
            &config.rules.baseline_dirs,
            config.alerts.baselines.max_entities,
            checkpoint.clone(),
        )
    });
    let live_yara = LiveYara::load(
        config.rules.bundled,
        &config.rules.yara_dirs,
        &config.rules.yara_fields,
        config.rules.yara_max_scan_bytes,
    )
    .context("loading the YARA rules")?;
    let _ = metrics.yara.set(live_yara.clone());
    let yara = Some(live_yara.clone());
    let detect = DetectStage {
        bus: bus.clone(),
        rules: rules.clone(),
        metrics: metrics.clone(),
        suppressions: suppressions.clone(),
        yara,
        flow: std::sync::Mutex::new(AlertFlow::new(&config.alerts).with_baselines(
            BaselineEngine::new(&baselines.defs, config.alerts.baselines.max_entities),
            checkpoint.clone(),
        )),
        baselines: live_baselines.clone(),
        correlation: Arc::new(std::sync::Mutex::new(
            crate::correlation_state::CorrelationState::new(&config.alerts.correlation),
        )),
        correlation_checkpoint: data_dir.path().join("correlation").join("windows.json"),
        covered_checkpoint: data_dir.path().join("correlation").join("covered.json"),
        rebuild_limits: crate::detect_rebuild::RebuildLimits {
            window: config
                .bus
                .kafka
                .as_ref()
                .filter(|k| k.rebuild_seconds > 0)
                .map(|k| Duration::from_secs(k.rebuild_seconds)),
            max_events: config
                .bus
                .kafka
                .as_ref()
                .map_or(0, |k| k.rebuild_max_events),
        },
        audit: audit.clone(),
        checkpoint_every: Duration::from_secs(config.alerts.baselines.checkpoint_seconds),
        cancel: cancel.clone(),
    };
    let detection = tokio::spawn(detect.run());
    let watch = (config.rules.reload_poll_ms > 0).then(|| {
        let every = Duration::from_millis(config.rules.reload_poll_ms);
        (
            rules.clone().spawn_watch(every, cancel.clone()),
            live_yara.clone().spawn_watch(every, cancel.clone()),
            live_baselines
                .clone()
                .map(|b| b.spawn_watch(every, cancel.clone())),
        )
    });
    // Responders are set up before anything listens: a missing secret fails the start.
    let responders = Responder::all(&config.responders)?;
    let responding = (!responders.is_empty()).then(|| {
        tokio::spawn(
            RespondStage {
                bus: bus.clone(),
                responders,
                ledger_path: data_dir.path().join("respond").join("finished.log"),
                metrics: metrics.clone(),
                audit: audit.clone(),
                cancel: cancel.clone(),
            }
            .run(),
        )
    });
    let storing = tokio::spawn(
        StoreStage {
            bus: bus.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        }
        .run(),
    );
    // Only the embedded log reports a backlog; on Kafka the broker holds it.
    let max_backlog = config
        .bus
        .embedded
        .max_backlog_mib
        .saturating_mul(1024 * 1024);
    let sink = Arc::new(BusSink {
        bus: bus.clone(),
        metrics: metrics.clone(),
        pressure: crate::backpressure::Backpressure::new(
            bus.clone(),
            Some(max_backlog),
            metrics.clone(),
        ),
    });
    let ingest = &config.ingest;
    let limits = Limits {
        max_record_bytes: ingest.max_record_bytes,
        max_fields: ingest.max_fields,
        max_depth: ingest.max_depth,
        ..Limits::default()
    };

    // TLS material is read before anything listens: a bad file fails the start.
    let tls = match &config.http.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            vedette_connectors::tls::server_config(&t.cert, &t.key, t.client_ca.as_deref(), false)
                .map_err(|e| anyhow::anyhow!("http.tls: {e}"))?,
        ))),
        None => None,
    };
    let listener = match TcpListener::bind(config.http.addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == ErrorKind::AddrInUse => bail!(
            "http address {} is already in use; choose another with --http-addr or [http] addr",
            config.http.addr
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {}", config.http.addr)),
    };
    let addr = listener.local_addr().context("reading the bound address")?;

    let (tx, source) = vedette_connectors::channel(CHUNK_QUEUE);
    let mut parsers = HashMap::new();

    let syslog_format = format_of(&ingest.syslog.format, "ingest.syslog.format")?;
    let syslog_limits = Limits {
        max_record_bytes: limits.max_record_bytes.min(ingest.syslog.max_message_bytes),
        ..limits
    };
    for name in [UDP_SOURCE, TCP_SOURCE, TLS_SOURCE] {
        parsers.insert(
            name.to_string(),
            shared_parser(syslog_format, syslog_limits),
        );
    }
    let listeners = syslog::start(&ingest.syslog, &ingest.tenant, tx.clone(), cancel.clone())
        .await
        .map_err(|e| {
            anyhow::anyhow!("syslog: {e}; change [ingest.syslog] or turn the listener off")
        })?;

    let _ = metrics.udp_dropped.set(listeners.udp_dropped.clone());
    let positions = Arc::new(Positions::load(
        &data_dir.path().join("file-positions.json"),
    )?);
    let mut inputs = Vec::new();
    for (i, f) in ingest.files.iter().enumerate() {
        let name = format!("file-{i}");
        parsers.insert(
            name.clone(),
            shared_parser(
                format_of(&f.format, &format!("ingest.files[{i}].format"))?,
                limits,
            ),
        );
        let input = FileInput {
            name,
            patterns: f.paths.clone(),
            follow: f.follow,
            tenant: f.tenant.clone().unwrap_or_else(|| ingest.tenant.clone()),
            poll: Duration::from_millis(250),
            park_after: Duration::from_secs(60),
            keep_open: 64,
        };
        inputs.push(tokio::spawn(vedette_connectors::file::run(
            input,
            positions.clone(),
            tx.clone(),
            cancel.clone(),
        )));
    }
    if let Some(format) = stdin_format {
        parsers.insert(STDIN_SOURCE.to_string(), shared_parser(format, limits));
        // A plain thread reads stdin (a blocking read cannot be cancelled); a task
        // forwards its chunks until shutdown, so a stdin that never ends cannot hold
        // the pipeline open.
        let (stdin_tx, mut stdin_source) = vedette_connectors::channel(16);
        let tenant = ingest.tenant.clone();
        std::thread::Builder::new()
            .name("vedette-stdin".into())
            .spawn(move || {
                if let Err(e) =
                    vedette_connectors::stdin::read_all(std::io::stdin().lock(), &tenant, &stdin_tx)
                {
                    tracing::warn!(error = %e, "reading stdin failed");
                }
            })
            .context("cannot start the stdin reader")?;
        let (tx, cancel) = (tx.clone(), cancel.clone());
        inputs.push(tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => break,
                    c = stdin_source.next_chunk() => c,
                };
                let Ok(Some(chunk)) = next else { break };
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok(())
        }));
    }
    drop(tx);

    let stage = IngestStage {
        sink: sink.clone(),
        tenant: ingest.tenant.clone(),
        metrics: metrics.clone(),
        parsers,
        default_parser: shared_parser(Format::Auto, limits),
        batch_rows: ingest.batch_rows,
        batch_age: Duration::from_millis(ingest.batch_age_ms),
        batch_bytes: ingest.batch_bytes,
        positions: Some(positions),
        cancel: cancel.clone(),
    };
    // If the ingest stage stops on its own (it only does on an error it cannot retry
    // past), the whole service stops rather than accepting input it cannot store.
    let stage_done = cancel.clone();
    let pipeline = tokio::spawn(async move {
        let result = stage.run(source).await;
        stage_done.cancel();
        result
    });

    let http_ingest = HttpIngest {
        sink,
        limits,
        tenant: ingest.tenant.clone(),
        max_body: config.http.max_body_bytes,
        max_decompressed: ingest.http.max_decompressed_bytes as u64,
        max_records: ingest.http.max_records,
        require_client_cert: config
            .http
            .tls
            .as_ref()
            .is_some_and(|t| t.ingest_requires_client_cert),
        parse_slots: crate::http::ingest_parse_slots(),
    };
    let http_alerts = HttpAlerts {
        store: store.clone(),
        suppressions,
    };
    let http_query = HttpQuery {
        store,
        dialect: match config.store.kind {
            StoreKind::Parquet => vedette_storage::Dialect::DataFusion,
            StoreKind::Clickhouse => vedette_storage::Dialect::ClickHouse,
        },
    };
    let bus = match config.bus.kind {
        BusKind::Embedded => "embedded",
        BusKind::Kafka => "kafka",
    };
    let store = match config.store.kind {
        StoreKind::Parquet => "parquet",
        StoreKind::Clickhouse => "clickhouse",
    };
    let auth = Auth::new(
        tokens,
        RateLimit {
            per_second: config.http.rate_per_token,
            burst: f64::from(config.http.rate_burst),
        },
    )
    .with_audit(audit.clone());
    let health = HealthHistory::new(Duration::from_secs(5));
    let sampling = health.clone().spawn(metrics.clone(), cancel.clone());
    let state = AppState {
        metrics,
        auth,
        shutdown: cancel.clone(),
        components: Arc::new(serde_json::json!({
            "bus": bus,
            "store": store,
            "risk": {
                "enabled": config.alerts.risk.enabled,
                "window_hours": config.alerts.risk.window_hours,
                "threshold": config.alerts.risk.threshold,
            },
        })),
        ingest: Some(Arc::new(http_ingest)),
        query: Some(Arc::new(http_query)),
        alerts: Some(Arc::new(http_alerts)),
        rules: Some(rules),
        health: Some(health),
    };
    let app = http::router(state, &config.http);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.path().display(),
        %addr,
        syslog_udp = ?listeners.udp,
        syslog_tcp = ?listeners.tcp,
        syslog_tls = ?listeners.tls,
        files = ingest.files.len(),
        bus,
        store,
        "vedette started"
    );
    let shutdown = cancel.clone();
    let signals = tokio::spawn(async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = shutdown.cancelled() => {}
        }
        shutdown.cancel();
    });
    match tls {
        Some(acceptor) => http::tls_serve::serve(listener, app, acceptor, cancel.clone()).await,
        None => axum::serve(listener, app)
            .with_graceful_shutdown(cancel.clone().cancelled_owned())
            .await
            .context("http server failed")?,
    }
    cancel.cancel();
    signals.await.context("signal task failed")?;
    listeners.join().await;
    for input in inputs {
        if let Ok(Err(e)) = input.await {
            tracing::warn!(error = %e, "file input stopped with an error");
        }
    }
    pipeline.await.context("ingest stage failed")??;
    detection.await.context("detection stage failed")??;
    storing.await.context("storage stage failed")??;
    if let Some(responding) = responding {
        responding.await.context("respond stage failed")??;
    }
    refresh.await.context("false-positive refresh failed")?;
    sampling.await.context("health sampling failed")?;
    if let Some((sigma_watch, yara_watch, baseline_watch)) = watch {
        sigma_watch.await.context("rule watcher failed")?;
        yara_watch.await.context("YARA rule watcher failed")?;
        if let Some(w) = baseline_watch {
            w.await.context("baseline watcher failed")?;
        }
    }
    // Every sender is gone with the router: the writer flushes and ends.
    drop(audit);
    match tokio::time::timeout(Duration::from_secs(5), audit_writer).await {
        Ok(done) => done.context("audit writer failed")?,
        Err(_) => tracing::warn!("the audit writer did not finish within 5 s"),
    }
    if let Some(log) = log {
        log.close().context("closing the embedded log")?;
    }
    info!("vedette stopped");
    Ok(())
}

/// Makes sure an admin token exists; a generated one is printed once, on stdout.
/// Returns the id of a token it stored.
fn bootstrap_admin(tokens: &TokenStore) -> anyhow::Result<Option<String>> {
    let env = std::env::var("VEDETTE_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    Ok(match tokens.bootstrap_admin(env.as_deref())? {
        AdminBootstrap::Existing => None,
        AdminBootstrap::FromEnv(id) => Some(id),
        AdminBootstrap::Generated { id, token } => {
            println!(
                "First start: admin token {id} created; it is shown this once \
                 (only its hash is kept):\n{token}"
            );
            Some(id)
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, shutting down"),
        () = term => info!("SIGTERM received, shutting down"),
    }
}
