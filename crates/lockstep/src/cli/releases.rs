//! `lockstep release …`: start a release and follow it, list, inspect and cancel them.

use std::process::ExitCode;

use clap::Subcommand;

use lockstep_client::{Client, Release};

use super::progress::{follow, waiting_text, Mode};
use super::table::{or_dash, print_fields, Table};
use super::{hint_next_page, print_json, Connection, PageArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
enum ReleaseCommand {
    /// List releases, newest first
    List {
        /// Only releases of this instance
        #[arg(long)]
        instance: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a release: its stage and what it waits on
    Show { id: String },
    /// Start a release of a tag to an instance
    Start {
        #[arg(long)]
        instance: String,
        /// The git tag to deploy
        #[arg(long)]
        tag: String,
        #[arg(long)]
        zero_downtime: bool,
        /// Follow its progress until it ends; exit 0 if it closed, 3 failed, 4 cancelled
        #[arg(long)]
        follow: bool,
    },
    /// Follow a release's progress until it ends; exit 0 if it closed, 3 failed, 4 cancelled
    Watch { id: String },
    /// Cancel a release; its open locks are settled as cancelled
    Cancel {
        id: String,
        /// Why, for the action log
        #[arg(long)]
        message: String,
    },
    /// A release's deliveries and their attempts
    Deliveries { id: String },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        ReleaseCommand::List { instance, page } => {
            list(&client, instance.as_deref(), &page, json).await?
        }
        ReleaseCommand::Show { id } => show(&client.release(&id).await?, json)?,
        ReleaseCommand::Start {
            instance,
            tag,
            zero_downtime,
            follow: then_follow,
        } => {
            let release = client.start_release(&instance, &tag, zero_downtime).await?;
            if then_follow {
                return follow(&client, &release.id, Mode::detect(json)).await;
            }
            started(&release, json)?;
        }
        ReleaseCommand::Watch { id } => return follow(&client, &id, Mode::detect(json)).await,
        ReleaseCommand::Cancel { id, message } => {
            let release = client.cancel_release(&id, &message).await?;
            if json {
                print_json(&release)?;
            } else {
                println!("Release {} is {}.", release.id, release.stage);
            }
        }
        ReleaseCommand::Deliveries { id } => deliveries(&client, &id, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn started(release: &Release, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(release);
    }
    println!(
        "Release {} of {} to {} is {}.",
        release.id, release.tag, release.instance, release.state
    );
    println!("Follow it with: lockstep release watch {}", release.id);
    Ok(())
}

async fn list(
    client: &Client,
    instance: Option<&str>,
    page: &PageArgs,
    json: bool,
) -> anyhow::Result<()> {
    let page = client.releases(instance, &page.request()).await?;
    if json {
        return print_json(&page);
    }
    let mut table = Table::new(&["ID", "INSTANCE", "TAG", "STATE", "STAGE", "CREATED"]);
    for release in &page.items {
        table.row(vec![
            release.id.clone(),
            release.instance.clone(),
            release.tag.clone(),
            release.state.clone(),
            release.stage.clone(),
            release.created_at.clone(),
        ]);
    }
    table.print("No releases yet.");
    hint_next_page(page.next_cursor.as_deref());
    Ok(())
}

fn show(release: &Release, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(release);
    }
    print_fields(&[
        ("ID", release.id.clone()),
        ("Instance", release.instance.clone()),
        ("Tag", release.tag.clone()),
        (
            "Zero downtime",
            if release.zero_downtime { "yes" } else { "no" }.into(),
        ),
        ("State", release.state.clone()),
        (
            "Stage",
            format!("{} since {}", release.stage, release.stage_since),
        ),
        ("Action log", release.parent_log.to_string()),
        ("Failure", or_dash(release.failure_reason.as_deref())),
        ("Started by", release.created_by.clone()),
        ("Created", release.created_at.clone()),
        ("Finished", or_dash(release.finished_at.as_deref())),
    ]);
    for item in &release.waiting_on {
        println!("{}", waiting_text(item));
    }
    Ok(())
}

async fn deliveries(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let deliveries = client.release_deliveries(id).await?;
    if json {
        return print_json(&serde_json::json!({ "items": deliveries }));
    }
    let mut table = Table::new(&["ID", "EVENT", "WEBHOOK", "STATUS", "ATTEMPTS", "LAST"]);
    for delivery in &deliveries {
        let last = delivery.attempt_log.last().map(|a| match a.status_code {
            Some(code) => code.to_string(),
            None => a.error_kind.clone().unwrap_or_default(),
        });
        let event = match delivery.locking {
            true => format!("{} (locking)", delivery.event),
            false => delivery.event.clone(),
        };
        table.row(vec![
            delivery.id.clone(),
            event,
            delivery.webhook.clone(),
            delivery.status.clone(),
            delivery.attempts.to_string(),
            or_dash(last.as_deref()),
        ]);
    }
    table.print("No deliveries.");
    Ok(())
}
