//! `lockstep webhook …`: subscriptions to a release's events, locking or not.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;

use lockstep_client::{Client, Event, NewWebhook, Subscription, Webhook};

use super::table::{or_dash, print_fields, Table};
use super::{hint_next_page, print_json, Connection, PageArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: WebhookCommand,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// List webhooks
    List(PageArgs),
    /// Show a webhook
    Show { id: String },
    /// Create a webhook (admin)
    Create(CreateArgs),
    /// Let a webhook get deliveries again (admin)
    Enable { id: String },
    /// Stop deliveries to a webhook; releases no longer wait on it (admin)
    Disable { id: String },
    /// Send a sample delivery now and show what the endpoint answered (admin)
    Test { id: String },
    /// Delete a webhook (admin)
    Delete { id: String },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The endpoint Lockstep POSTs to
    #[arg(long)]
    url: String,
    /// An event to send, without holding the release (repeatable)
    #[arg(long = "event", value_name = "EVENT")]
    events: Vec<String>,
    /// An event to send and hold the release at until its lock is released (repeatable)
    #[arg(long = "lock", value_name = "EVENT")]
    locks: Vec<String>,
    /// Shared secret sent in `X-MDOQ-Secret` and the body
    #[arg(long, conflicts_with = "secret_stdin")]
    secret: Option<String>,
    /// Read the shared secret from the first line of standard input
    #[arg(long)]
    secret_stdin: bool,
    /// Only releases of this instance (repeatable; default: every instance)
    #[arg(long = "instance", value_name = "ID")]
    instances: Vec<String>,
    /// Seconds one attempt may take, 1 to 300 [default: 60]
    #[arg(long)]
    timeout: Option<i64>,
    /// A note for people
    #[arg(long)]
    description: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        WebhookCommand::List(page) => list(&client, &page, json).await?,
        WebhookCommand::Show { id } => show(&client.webhook(&id).await?, json)?,
        WebhookCommand::Create(create) => {
            let webhook = client.create_webhook(&new_webhook(create)?).await?;
            if json {
                print_json(&webhook)?;
            } else {
                println!("Created webhook {}.", webhook.id);
            }
        }
        WebhookCommand::Enable { id } => enable(&client, &id, true, json).await?,
        WebhookCommand::Disable { id } => enable(&client, &id, false, json).await?,
        WebhookCommand::Test { id } => return test(&client, &id, json).await,
        WebhookCommand::Delete { id } => {
            client.delete_webhook(&id).await?;
            if !json {
                println!("Deleted webhook {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client, page: &PageArgs, json: bool) -> anyhow::Result<()> {
    let page = client.webhooks(&page.request()).await?;
    if json {
        return print_json(&page);
    }
    let mut table = Table::new(&["ID", "URL", "EVENTS", "ENABLED"]);
    for webhook in &page.items {
        table.row(vec![
            webhook.id.clone(),
            webhook.url.clone(),
            events_text(&webhook.events),
            if webhook.enabled { "yes" } else { "no" }.into(),
        ]);
    }
    table.print("No webhooks yet.");
    hint_next_page(page.next_cursor.as_deref());
    Ok(())
}

/// `before_release, before_release_complete (locking)`.
fn events_text(events: &[Subscription]) -> String {
    let names: Vec<String> = events
        .iter()
        .map(|s| match s.locking {
            true => format!("{} (locking)", s.event),
            false => s.event.to_string(),
        })
        .collect();
    names.join(", ")
}

fn parse_event(name: &str) -> anyhow::Result<Event> {
    match Event::parse(name.trim()) {
        Event::Unknown => {
            let known: Vec<_> = Event::ALL.iter().map(|e| e.as_str()).collect();
            bail!(
                "unknown event {name:?}; expected one of {}",
                known.join(", ")
            )
        }
        event => Ok(event),
    }
}

fn new_webhook(args: CreateArgs) -> anyhow::Result<NewWebhook> {
    let mut events = Vec::new();
    for (names, locking) in [(&args.events, false), (&args.locks, true)] {
        for name in names {
            let event = parse_event(name)?;
            events.push(Subscription { event, locking });
        }
    }
    if events.is_empty() {
        bail!("name at least one event with --event or --lock");
    }
    let secret = match args.secret_stdin {
        true => Some(read_secret_line()?),
        false => args.secret,
    };
    Ok(NewWebhook {
        url: args.url,
        events,
        secret,
        instances: (!args.instances.is_empty()).then_some(args.instances),
        timeout_seconds: args.timeout,
        description: args.description,
    })
}

fn read_secret_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the secret from standard input")?;
    let secret = line.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("--secret-stdin: standard input held no secret");
    }
    Ok(secret)
}

fn show(webhook: &Webhook, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(webhook);
    }
    let instances = match &webhook.instances {
        Some(list) => list.join(", "),
        None => "every instance".into(),
    };
    let enabled = match (&webhook.enabled, &webhook.disabled_reason) {
        (true, _) => "yes".to_owned(),
        (false, Some(reason)) => format!("no: {reason}"),
        (false, None) => "no".to_owned(),
    };
    print_fields(&[
        ("ID", webhook.id.clone()),
        ("URL", webhook.url.clone()),
        ("Events", events_text(&webhook.events)),
        ("Instances", instances),
        (
            "Secret",
            if webhook.has_secret { "set" } else { "none" }.into(),
        ),
        ("Enabled", enabled),
        ("Timeout", format!("{}s", webhook.timeout_seconds)),
        ("Retries", or_dash(webhook.retry_schedule.as_deref())),
        ("Description", webhook.description.clone()),
    ]);
    Ok(())
}

async fn enable(client: &Client, id: &str, enabled: bool, json: bool) -> anyhow::Result<()> {
    let webhook = client.set_webhook_enabled(id, enabled).await?;
    if json {
        return print_json(&webhook);
    }
    let state = if webhook.enabled {
        "enabled"
    } else {
        "disabled"
    };
    println!("Webhook {} is {state}.", webhook.id);
    Ok(())
}

/// Exits non-zero when the endpoint's answer would count as a failed attempt.
async fn test(client: &Client, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let answer = client.test_webhook(id).await?;
    if json {
        print_json(&answer)?;
    } else if answer.ok {
        let status = answer.status_code.map_or("-".into(), |s| s.to_string());
        println!(
            "The endpoint answered {status} in {} ms.",
            answer.duration_ms
        );
    } else {
        let kind = or_dash(answer.error_kind.as_deref());
        let error = answer.error.as_deref().unwrap_or("no detail");
        println!("The attempt failed ({kind}): {error}");
    }
    Ok(if answer.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
