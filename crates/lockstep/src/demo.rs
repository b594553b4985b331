//! `lockstep demo`: the main job end to end, on this machine and nothing else.
//!
//! Starts the service in this process on a temporary SQLite file, and beside it an example
//! middleware built on `lockstep-client` (see [`middleware`]), subscribed to all three
//! events with `before_release_complete` locking. Then it creates an instance with one real
//! step, starts a release, follows it as `lockstep release watch` does, and prints the
//! whole action log. The temporary directory is removed on the way out, whatever happened.

mod middleware;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use lockstep_client::{Client, Event, NewInstance, NewWebhook, Release, Step, Subscription};
use lockstep_core::secret::{generate_token, API_TOKEN_PREFIX};

use crate::cli::logs::print_entries;
use crate::cli::progress::{follow, Mode};
use crate::config::{Config, ServeArgs};
use crate::server::Application;

/// The one step of the demo's instance: real commands, fed the release's parameters.
const STEP: &str = "echo \"building $LOCKSTEP_TAG for $LOCKSTEP_INSTANCE\"; sleep 1; \
    echo \"build finished\"";

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Seconds the middleware's job takes before it releases the lock
    #[arg(long, default_value_t = 2.0)]
    job_seconds: f64,
    /// Give up if the release has not ended after this many seconds
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_quiet_tracing();
    let dir = ScratchDir::create()?;
    let result = run_in(dir.path(), &args).await;
    drop(dir);
    result
}

async fn run_in(dir: &Path, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let admin_token = generate_token(API_TOKEN_PREFIX);
    let (server, stop, served) = start_service(dir, &admin_token).await?;
    println!("Lockstep is running at {server} on a temporary database.");
    let admin = Client::new(&server, admin_token.as_str())?;

    let hook_token = admin
        .create_token("demo middleware", &["hook".to_owned()])
        .await?;
    let secret = generate_token("demo_");
    let job = Duration::from_secs_f64(args.job_seconds.clamp(0.0, 600.0));
    let middleware = middleware::start(
        Client::new(&server, hook_token.secret.as_str())?,
        &secret,
        job,
    )
    .await?;
    println!("The example middleware listens at {}.", middleware.url);

    let release = set_up_and_start(&admin, &middleware.url, &secret).await?;
    println!();
    let limit = Duration::from_secs(args.timeout);
    let code = tokio::time::timeout(limit, follow(&admin, &release.id, Mode::detect(false)))
        .await
        .with_context(|| format!("the release did not end within {}s", args.timeout))??;

    println!("\nThe whole action log of release {}:\n", release.id);
    print_entries(&admin.log(release.parent_log).await?);

    drop(middleware);
    let _ = stop.send(());
    served.await.context("stopping the service")??;
    Ok(code)
}

type Served = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Builds and serves the application on a free loopback port; loopback webhooks allowed.
async fn start_service(
    dir: &Path,
    admin_token: &str,
) -> anyhow::Result<(String, oneshot::Sender<()>, Served)> {
    let args = ServeArgs {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(format!("sqlite://{}", dir.join("lockstep.db").display())),
        admin_token: Some(admin_token.to_owned()),
        allow_networks: Some("127.0.0.0/8".into()),
        shutdown_grace: Some("5s".into()),
        node_id: Some("demo".into()),
        ..ServeArgs::default()
    };
    let config = Config::load(args)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .context("binding a loopback port")?;
    let server = format!("http://{}", listener.local_addr()?);
    let app = Application::build(config).await?;

    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    Ok((server, stop, served))
}

/// The webhook, the instance with its step, and the release, through the API.
async fn set_up_and_start(admin: &Client, url: &str, secret: &str) -> anyhow::Result<Release> {
    let subscribe = |event, locking| Subscription { event, locking };
    let webhook = NewWebhook {
        url: url.to_owned(),
        events: vec![
            subscribe(Event::BeforeRelease, false),
            subscribe(Event::BeforeReleaseComplete, true),
            subscribe(Event::AfterRelease, false),
        ],
        secret: Some(secret.to_owned()),
        description: Some("the demo's example middleware".into()),
        ..NewWebhook::default()
    };
    let webhook = admin.create_webhook(&webhook).await?;
    println!(
        "Webhook {}: before_release, before_release_complete (locking), after_release.",
        webhook.id
    );

    let instance = NewInstance {
        id: "demo-shop".into(),
        name: "Demo shop".into(),
        url: "https://shop.example.com".into(),
        attributes: serde_json::Map::from_iter([("php".to_owned(), "8.3".into())]),
        steps: Some(vec![Step {
            name: "build".into(),
            run: STEP.into(),
        }]),
    };
    let instance = admin.create_instance(&instance).await?;
    println!("Instance {} with one step: {STEP}", instance.id);

    Ok(admin.start_release(&instance.id, "v1.0.0", true).await?)
}

/// The service's own logs would bury the demo's output; only warnings are shown.
fn init_quiet_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A directory of the demo's own, removed with everything in it when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> anyhow::Result<ScratchDir> {
        let name = format!(
            "lockstep-demo-{}",
            generate_token("").get(..16).unwrap_or("x")
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)
            .with_context(|| format!("creating the directory {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            eprintln!("lockstep: could not remove {}: {err}", self.0.display());
        }
    }
}
