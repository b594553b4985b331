//! `lockstep log …`: read a release's action log, or append to it from a script.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;

use lockstep_client::{LogEntry, LogStatus};

use super::{print_json, Connection};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Show a log entry and everything under it (a release's `parent_log` for all of it)
    Show { id: i64 },
    /// Append an entry under ID (the payload's `parent_log`), as receivers do
    Append {
        id: i64,
        message: String,
        /// info, success, warning or error
        #[arg(long, default_value = "info")]
        status: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connection.client()?;
    let json = args.connection.json;
    match args.command {
        LogCommand::Show { id } => {
            let entries = client.log(id).await?;
            if json {
                print_json(&serde_json::json!({ "entries": entries }))?;
            } else {
                print_entries(&entries);
            }
        }
        LogCommand::Append {
            id,
            message,
            status,
        } => {
            let Some(status) = LogStatus::parse(&status) else {
                bail!("--status: {status:?} is not one of info, success, warning, error");
            };
            let entry = client.append_log(id, &message, status).await?;
            if json {
                print_json(&entry)?;
            } else {
                println!("Appended entry {} under {id}.", entry.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints entries as an indented tree, in the order they were written.
pub fn print_entries(entries: &[LogEntry]) {
    let mut tree = LogTree::default();
    for entry in entries {
        println!("{}", tree.line(entry));
    }
}

/// Remembers how deep each entry sits, so later entries can be indented under it.
#[derive(Debug, Default)]
pub struct LogTree {
    depths: HashMap<i64, usize>,
}

impl LogTree {
    /// `12:00:03  ✓ message`, indented by the entry's depth below the release's root.
    pub fn line(&mut self, entry: &LogEntry) -> String {
        let depth = entry
            .parent_id
            .and_then(|parent| self.depths.get(&parent))
            .map_or(0, |d| d + 1);
        self.depths.insert(entry.id, depth);
        let indent = "  ".repeat(depth.saturating_sub(1));
        let time = entry.created_at.get(11..19).unwrap_or("--:--:--");
        let mark = match entry.status.as_str() {
            "success" => "✓",
            "warning" => "!",
            "error" => "✗",
            _ => "·",
        };
        let actor = match (&entry.kind[..], &entry.actor) {
            // The token's name says who; its id would only make the line longer.
            ("receiver", Some(actor)) => {
                format!("  [{}]", actor.split(" (").next().unwrap_or(actor))
            }
            _ => String::new(),
        };
        let message = crate::cli::table::printable(&entry.message);
        format!(
            "{time}  {indent}{mark} {message}{}",
            crate::cli::table::printable(&actor)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, parent: Option<i64>, status: &str, message: &str) -> LogEntry {
        LogEntry {
            id,
            parent_id: parent,
            status: status.into(),
            message: message.into(),
            kind: "step".into(),
            created_at: "2026-12-03T13:20:28Z".into(),
            ..LogEntry::default()
        }
    }

    #[test]
    fn entries_are_indented_under_their_parents_with_a_mark_for_their_status() {
        let mut tree = LogTree::default();
        let lines: Vec<String> = [
            entry(1, None, "info", "release queued"),
            entry(2, Some(1), "info", "step started"),
            entry(3, Some(2), "warning", "output"),
            entry(4, Some(1), "success", "closed"),
        ]
        .iter()
        .map(|e| tree.line(e))
        .collect();
        assert_eq!(
            lines,
            [
                "13:20:28  · release queued",
                "13:20:28  · step started",
                "13:20:28    ! output",
                "13:20:28  ✓ closed",
            ]
        );
    }
}
