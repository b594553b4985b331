//! `lockstep instance …`: the environments releases deploy to, and their steps.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Map, Value};

use lockstep_client::{Instance, NewInstance, Step};

use super::table::{print_fields, Table};
use super::{hint_next_page, key_value, print_json, Connection, PageArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: InstanceCommand,
}

#[derive(Debug, Subcommand)]
enum InstanceCommand {
    /// List instances
    List(PageArgs),
    /// Show an instance and its steps
    Show { id: String },
    /// Create an instance (steps need an admin token)
    Create(CreateArgs),
    /// Delete an instance (admin)
    Delete { id: String },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Its id: lower-case letters, digits and dashes
    #[arg(long)]
    id: String,
    /// A name for people
    #[arg(long)]
    name: String,
    /// Its URL, sent to receivers
    #[arg(long)]
    url: String,
    /// A free-form attribute sent to receivers, as KEY=VALUE (repeatable)
    #[arg(long = "attribute", value_name = "KEY=VALUE")]
    attributes: Vec<String>,
    /// A release step, as NAME=COMMAND, run with `sh -c` in order (repeatable)
    #[arg(long = "step", value_name = "NAME=COMMAND")]
    steps: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        InstanceCommand::List(page) => {
            let page = client.instances(&page.request()).await?;
            if json {
                return print_json(&page).map(|()| ExitCode::SUCCESS);
            }
            let mut table = Table::new(&["ID", "NAME", "URL", "STEPS"]);
            for i in &page.items {
                table.row(vec![
                    i.id.clone(),
                    i.name.clone(),
                    i.url.clone(),
                    i.steps.len().to_string(),
                ]);
            }
            table.print("No instances yet.");
            hint_next_page(page.next_cursor.as_deref());
        }
        InstanceCommand::Show { id } => show(&client.instance(&id).await?, json)?,
        InstanceCommand::Create(create) => {
            let instance = client.create_instance(&new_instance(create)?).await?;
            if json {
                return print_json(&instance).map(|()| ExitCode::SUCCESS);
            }
            println!("Created instance {}.", instance.id);
        }
        InstanceCommand::Delete { id } => {
            client.delete_instance(&id).await?;
            if !json {
                println!("Deleted instance {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn new_instance(args: CreateArgs) -> anyhow::Result<NewInstance> {
    let mut attributes = Map::new();
    for text in &args.attributes {
        let (key, value) = key_value(text, "--attribute")?;
        attributes.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let mut steps = Vec::new();
    for text in &args.steps {
        let (name, run) = key_value(text, "--step")?;
        steps.push(Step {
            name: name.to_owned(),
            run: run.to_owned(),
        });
    }
    Ok(NewInstance {
        id: args.id,
        name: args.name,
        url: args.url,
        attributes,
        steps: (!steps.is_empty()).then_some(steps),
    })
}

fn show(instance: &Instance, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(instance);
    }
    let attributes: Vec<String> = instance
        .attributes
        .iter()
        .map(|(k, v)| match v {
            Value::String(text) => format!("{k}={text}"),
            other => format!("{k}={other}"),
        })
        .collect();
    print_fields(&[
        ("ID", instance.id.clone()),
        ("Name", instance.name.clone()),
        ("URL", instance.url.clone()),
        ("Attributes", attributes.join(", ")),
        ("Created", instance.created_at.clone()),
    ]);
    let mut steps = Table::new(&["#", "STEP", "COMMAND"]);
    for (i, step) in instance.steps.iter().enumerate() {
        steps.row(vec![
            (i + 1).to_string(),
            step.name.clone(),
            step.run.clone(),
        ]);
    }
    println!();
    steps.print("No steps.");
    Ok(())
}
