//! `lockstep lock …`: release a lock from a script with its token, or, as an operator,
//! list locks and force one by its id.

use std::process::ExitCode;

use clap::Subcommand;

use lockstep_client::{Client, Lock, Outcome};

use super::table::{or_dash, print_fields, Table};
use super::{hint_next_page, print_json, Connection, PageArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Debug, Subcommand)]
enum LockCommand {
    /// Release the lock a webhook was sent (its token, the payload's `lock`); needs `hook`
    Release {
        /// The lock token from the payload (named apart from `--token`, the API token)
        #[arg(value_name = "TOKEN")]
        lock: String,
        /// Fail the release instead of letting it go on
        #[arg(long)]
        abort: bool,
        /// What was done, for the action log
        #[arg(long, default_value = "")]
        message: String,
    },
    /// List locks
    List {
        /// open, released or cancelled
        #[arg(long)]
        status: Option<String>,
        /// Only locks of this release
        #[arg(long)]
        release: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a lock
    Show { id: String },
    /// Settle a lock by its id as an operator; needs `deploy`
    Force {
        id: String,
        /// Fail the release instead of letting it go on
        #[arg(long)]
        abort: bool,
        /// Why, for the action log
        #[arg(long)]
        message: String,
    },
}

fn outcome(abort: bool) -> Outcome {
    if abort {
        Outcome::Abort
    } else {
        Outcome::Continue
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        LockCommand::Release {
            lock,
            abort,
            message,
        } => {
            let lock = client
                .release_lock(lock.trim(), outcome(abort), &message)
                .await?;
            settled(&lock, json)?;
        }
        LockCommand::List {
            status,
            release,
            page,
        } => list(&client, status.as_deref(), release.as_deref(), &page, json).await?,
        LockCommand::Show { id } => show(&client.lock(&id).await?, json)?,
        LockCommand::Force { id, abort, message } => settled(
            &client.force_lock(&id, outcome(abort), &message).await?,
            json,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

fn settled(lock: &Lock, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(lock);
    }
    let outcome = lock.outcome.as_deref().unwrap_or("-");
    println!(
        "Lock {} of release {} is {} ({outcome}).",
        lock.id, lock.release, lock.status
    );
    Ok(())
}

async fn list(
    client: &Client,
    status: Option<&str>,
    release: Option<&str>,
    page: &PageArgs,
    json: bool,
) -> anyhow::Result<()> {
    let page = client.locks(status, release, &page.request()).await?;
    if json {
        return print_json(&page);
    }
    let mut table = Table::new(&["ID", "RELEASE", "EVENT", "STATUS", "OUTCOME", "CREATED"]);
    for lock in &page.items {
        table.row(vec![
            lock.id.clone(),
            lock.release.clone(),
            lock.event.clone(),
            lock.status.clone(),
            or_dash(lock.outcome.as_deref()),
            lock.created_at.clone(),
        ]);
    }
    table.print("No locks.");
    hint_next_page(page.next_cursor.as_deref());
    Ok(())
}

fn show(lock: &Lock, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(lock);
    }
    print_fields(&[
        ("ID", lock.id.clone()),
        ("Release", lock.release.clone()),
        ("Delivery", lock.delivery.clone()),
        ("Event", lock.event.clone()),
        ("Status", lock.status.clone()),
        ("Outcome", or_dash(lock.outcome.as_deref())),
        ("Message", or_dash(lock.message.as_deref())),
        ("Released by", or_dash(lock.released_by.as_deref())),
        ("Released at", or_dash(lock.released_at.as_deref())),
        ("Created", lock.created_at.clone()),
    ]);
    Ok(())
}
