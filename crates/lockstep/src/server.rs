//! Start-up and shutdown of `lockstep serve`.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

use lockstep_core::ids::TokenId;
use lockstep_core::secret::{generate_token, hash_token, API_TOKEN_PREFIX};
use lockstep_engine::{Engine, EngineConfig};
use lockstep_store::cipher::Cipher;
use lockstep_store::Store;

use crate::config::Config;

/// A built service: its engine, and the admin token if one was generated for a new database.
pub struct Application {
    pub engine: Engine,
    pub generated_admin_token: Option<String>,
    pub config: Config,
}

impl Application {
    /// Opens the database (applying migrations), makes sure an admin token exists, and
    /// starts the engine, which resumes every release left under way.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let cipher = config
            .encryption_key
            .as_deref()
            .map(Cipher::from_base64)
            .transpose()?;
        let store = Store::connect(&config.database_url, cipher)
            .await
            .context("opening the database")?;
        let generated_admin_token = seed_admin_token(&store, config.admin_token.as_deref()).await?;
        let allow_networks = config
            .allow_networks
            .iter()
            .map(|n| lockstep_engine::guard::parse_network(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let engine_config = EngineConfig {
            node_id: config.node_id.clone(),
            user_agent: config.user_agent.clone(),
            retry: config.retry.clone(),
            max_in_flight: config.max_in_flight,
            allow_networks,
            release_lease: config.release_lease,
            lease_margin: config.lease_margin,
            disable_after: config.disable_after,
        };
        warn_about_risky_settings(&config);
        let engine = Engine::start(store, engine_config).await?;
        Ok(Application {
            engine,
            generated_admin_token,
            config,
        })
    }

    /// Serves the API on `listener` until `shutdown` completes, then lets attempts in flight
    /// finish (up to the configured grace) before returning.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        info!(%addr, node = self.config.node_id, "lockstep is serving");
        let app = lockstep_api::app(self.engine.clone());
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving the API")?;
        info!("shutting down: waiting for attempts in flight");
        self.engine.shutdown(self.config.shutdown_grace).await;
        info!("stopped");
        Ok(())
    }
}

/// Settings that work but leave something open are said once at start.
fn warn_about_risky_settings(config: &Config) {
    if config.encryption_key.is_none() {
        tracing::warn!(
            "no LOCKSTEP_ENCRYPTION_KEY: webhook secrets and delivery bodies are stored \
             in the clear"
        );
    }
    for network in &config.allow_networks {
        if network.ends_with("/0") {
            tracing::warn!(
                network,
                "webhooks may reach every address, private ones included"
            );
        }
    }
}

/// On a database with no token at all, creates the admin token: the configured one, or a
/// generated one that is returned so it can be shown once.
async fn seed_admin_token(
    store: &Store,
    configured: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if store.token_count().await? > 0 {
        return Ok(None);
    }
    let (secret, generated) = match configured {
        Some(token) => (token.to_owned(), false),
        None => (generate_token(API_TOKEN_PREFIX), true),
    };
    let id = TokenId::generate();
    store
        .create_token(
            id.as_str(),
            "admin",
            &hash_token(&secret),
            &["admin".to_owned()],
        )
        .await?;
    info!(token_id = %id, "created the admin token");
    Ok(generated.then_some(secret))
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
