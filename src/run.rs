//! `vedette run`: load config, take the data folder, serve until SIGINT/SIGTERM.

use std::io::ErrorKind;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tracing::info;
use vedette_core::config::{BusKind, Config, StoreKind};

use crate::cli::RunArgs;
use crate::data_dir::DataDir;
use crate::http::{self, AppState};
use crate::metrics::Metrics;

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
    crate::logging::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vedette-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let bus = match config.bus.kind {
        BusKind::Embedded => "embedded",
        BusKind::Kafka => "kafka",
    };
    let store = match config.store.kind {
        StoreKind::Parquet => "parquet",
        StoreKind::Clickhouse => "clickhouse",
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
    let state = AppState {
        metrics: Metrics::new(),
    };
    let app = http::router(state, &config.http);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.path().display(),
        %addr,
        bus,
        store,
        "vedette started"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("http server failed")?;
    info!("vedette stopped");
    Ok(())
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
