//! `lockstep token …`: API tokens and their scopes. A new token is shown once.

use std::process::ExitCode;

use clap::Subcommand;

use lockstep_client::Client;

use super::table::{or_dash, Table};
use super::{hint_next_page, print_json, Connection, PageArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// List tokens (admin)
    List(PageArgs),
    /// Create a token; it is printed once and cannot be shown again (admin)
    Create {
        /// What it is for
        #[arg(long)]
        name: String,
        /// admin, deploy, hook or read (repeatable)
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
    },
    /// Revoke a token (admin)
    Revoke { id: String },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        TokenCommand::List(page) => list(&client, &page, json).await?,
        TokenCommand::Create { name, scopes } => {
            let created = client.create_token(&name, &scopes).await?;
            if json {
                return print_json(&created).map(|()| ExitCode::SUCCESS);
            }
            let scopes = created.info.scopes.join(", ");
            eprintln!(
                "Created token {} ({scopes}). It is shown only this once:",
                created.info.id
            );
            println!("{}", created.secret);
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            if !json {
                println!("Revoked token {id}.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client, page: &PageArgs, json: bool) -> anyhow::Result<()> {
    let page = client.tokens(&page.request()).await?;
    if json {
        return print_json(&page);
    }
    let mut table = Table::new(&["ID", "NAME", "SCOPES", "LAST USED", "REVOKED"]);
    for token in &page.items {
        table.row(vec![
            token.id.clone(),
            token.name.clone(),
            token.scopes.join(","),
            or_dash(token.last_used_at.as_deref()),
            or_dash(token.revoked_at.as_deref()),
        ]);
    }
    table.print("No tokens.");
    hint_next_page(page.next_cursor.as_deref());
    Ok(())
}
