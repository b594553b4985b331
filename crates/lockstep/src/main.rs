//! `lockstep`: parses the command line, sets up logging, and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use lockstep::config::{Config, ServeArgs};
use lockstep::server::{shutdown_signal, Application};

#[derive(Parser)]
#[command(
    name = "lockstep",
    version,
    about = "Releases that fire webhooks and wait on locks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service
    Serve(ServeArgs),
    /// Run a release end to end against an example middleware, on a throwaway database
    Demo(lockstep::demo::DemoArgs),
    #[command(flatten)]
    Client(lockstep::cli::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => lockstep::demo::run(args).await,
        Command::Client(command) => lockstep::cli::run(command).await,
    };
    result.unwrap_or_else(|err| {
        eprintln!("lockstep: {err:#}");
        ExitCode::FAILURE
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let config = Config::load(args)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen: cannot bind {}: {e}", config.listen))?;
    let app = Application::build(config).await?;
    if let Some(token) = &app.generated_admin_token {
        println!(
            "Created an admin token. It is shown only this once; keep it safe:\n\n    {token}\n"
        );
    }
    println!("Listening on http://{}", listener.local_addr()?);
    app.serve(listener, shutdown_signal()).await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
