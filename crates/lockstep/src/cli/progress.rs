//! Following a release as the server pushes its progress: the log as it is written, the
//! stage, and what the release waits on and for how long.
//!
//! On a terminal, a status line at the bottom is redrawn in place every second; piped,
//! each change is a plain line; with `--json`, each update is one JSON object per line.
//! Nothing here polls the server: updates come from its event stream, and the one-second
//! tick only redraws the clock of the status line.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::sync::mpsc;

use lockstep_client::{Client, Release, ReleaseUpdate, Waiting};
use lockstep_core::time::{now_ms, parse_rfc3339};

use super::logs::LogTree;
use super::{EXIT_RELEASE_CANCELLED, EXIT_RELEASE_FAILED};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A terminal: log lines scroll, a status line is redrawn in place.
    Live,
    /// A pipe or a file: plain lines only.
    Lines,
    /// One JSON object per update, for scripts.
    Json,
}

impl Mode {
    pub fn detect(json: bool) -> Mode {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        match json {
            true => Mode::Json,
            false if std::io::stdout().is_terminal() && !dumb => Mode::Live,
            false => Mode::Lines,
        }
    }
}

/// Shows the release's progress until it ends; the exit code says how it ended.
pub async fn follow(client: &Client, release_id: &str, mode: Mode) -> anyhow::Result<ExitCode> {
    let (tx, mut updates) = mpsc::channel(64);
    let mut events = client.release_events(release_id);
    // Read on a task of its own, so the clock's tick never cuts a read short.
    let reader = tokio::spawn(async move {
        while let Some(update) = events.next().await {
            if tx.send(update).await.is_err() {
                return;
            }
        }
    });

    let mut view = ProgressView::new(mode);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            update = updates.recv() => match update {
                Some(Ok(update)) => {
                    view.show(&update)?;
                    if update.last {
                        break Ok(view.finish(&update.release)?);
                    }
                }
                Some(Err(err)) => break Err(anyhow::Error::new(err)),
                None => break Err(anyhow!("the event stream ended before the release did")),
            },
            _ = tick.tick(), if mode == Mode::Live => view.redraw_status()?,
        }
    };
    view.clear_status()?;
    reader.abort();
    result.with_context(|| format!("following release {release_id}"))
}

/// What has been shown so far.
struct ProgressView {
    mode: Mode,
    tree: LogTree,
    stage: String,
    /// The deliveries waited on, as last shown, so a plain line is printed only on change.
    waiting: Vec<String>,
    latest: Option<Release>,
    status_drawn: bool,
    out: std::io::Stdout,
}

impl ProgressView {
    fn new(mode: Mode) -> ProgressView {
        ProgressView {
            mode,
            tree: LogTree::default(),
            stage: String::new(),
            waiting: Vec::new(),
            latest: None,
            status_drawn: false,
            out: std::io::stdout(),
        }
    }

    fn show(&mut self, update: &ReleaseUpdate) -> anyhow::Result<()> {
        if self.mode == Mode::Json {
            let line = serde_json::to_string(update).context("writing JSON")?;
            writeln!(self.out, "{line}")?;
            return Ok(());
        }
        self.clear_status()?;
        if self.latest.is_none() {
            let release = &update.release;
            let zero = if release.zero_downtime {
                ", zero downtime"
            } else {
                ""
            };
            let (id, tag, instance) = (&release.id, &release.tag, &release.instance);
            writeln!(self.out, "Release {id}: {tag} to {instance}{zero}")?;
        }

        for entry in &update.entries {
            writeln!(self.out, "{}", self.tree.line(entry))?;
        }
        self.print_changes(&update.release)?;
        self.latest = Some(update.release.clone());
        self.redraw_status()?;
        self.out.flush()?;
        Ok(())
    }

    /// Lines for a new set of deliveries waited on and, when piped, for a new stage (a
    /// terminal has the stage in its status line).
    fn print_changes(&mut self, release: &Release) -> anyhow::Result<()> {
        if release.stage != self.stage && self.mode == Mode::Lines {
            self.stage = release.stage.clone();
            writeln!(self.out, "-- stage: {} ({})", release.stage, release.state)?;
        }
        let waiting: Vec<String> = release
            .waiting_on
            .iter()
            .map(|w| w.delivery.clone())
            .collect();
        if waiting != self.waiting {
            for item in &release.waiting_on {
                writeln!(self.out, "-- {}", waiting_text(item))?;
            }
            self.waiting = waiting;
        }
        Ok(())
    }

    /// Draws the status line again, on a terminal only, cut to the terminal's width.
    fn redraw_status(&mut self) -> anyhow::Result<()> {
        let Some(release) = self.latest.as_ref().filter(|_| self.mode == Mode::Live) else {
            return Ok(());
        };
        if release.is_finished() {
            return Ok(());
        }
        let line: String = status_text(release)
            .chars()
            .take(terminal_width() - 1)
            .collect();
        write!(self.out, "\r\x1b[2K{line}")?;
        self.out.flush()?;
        self.status_drawn = true;
        Ok(())
    }

    fn clear_status(&mut self) -> anyhow::Result<()> {
        if std::mem::take(&mut self.status_drawn) {
            write!(self.out, "\r\x1b[2K")?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// The closing line, and the exit code for how the release ended.
    fn finish(&mut self, release: &Release) -> anyhow::Result<ExitCode> {
        if self.mode == Mode::Json {
            return Ok(exit_code(release));
        }
        self.clear_status()?;
        let reason = release
            .failure_reason
            .as_deref()
            .unwrap_or("no reason given");
        let took = took(release).map_or(String::new(), |d| format!(" in {d}"));
        match release.stage.as_str() {
            "closed" => writeln!(self.out, "Release {} succeeded{took}.", release.id)?,
            "cancelled" => writeln!(self.out, "Release {} was cancelled: {reason}", release.id)?,
            _ => writeln!(self.out, "Release {} failed: {reason}", release.id)?,
        }
        Ok(exit_code(release))
    }
}

pub fn exit_code(release: &Release) -> ExitCode {
    match release.stage.as_str() {
        "closed" => ExitCode::SUCCESS,
        "cancelled" => ExitCode::from(EXIT_RELEASE_CANCELLED),
        _ => ExitCode::from(EXIT_RELEASE_FAILED),
    }
}

/// `steps: running step 1 for 4s` or `before_release_complete: waiting 1m 05s on a lock
/// (http://…)`: short, as it has one line of the terminal; the full wait is printed above.
pub fn status_text(release: &Release) -> String {
    let stage = &release.stage;
    let Some(first) = release.waiting_on.first() else {
        let since = elapsed_since(&release.stage_since).unwrap_or_default();
        let step = match stage.as_str() {
            "steps" => format!(" step {}", release.step_index + 1),
            _ => String::new(),
        };
        return format!("{stage}: {}{step} for {since}", release.state);
    };
    if let Some(ahead) = first.release.as_deref().filter(|_| first.on == "release") {
        return format!("{stage}: behind release {ahead}");
    }
    let waiting = &release.waiting_on;
    let locks = waiting.iter().filter(|w| w.lock.is_some()).count();
    let what = match (locks, waiting.len()) {
        (1, 1) => "a lock".to_owned(),
        (0, 1) => "the first answer".to_owned(),
        (l, n) if l == n => format!("{n} locks"),
        (_, n) => format!("{n} deliveries"),
    };
    let since = waiting
        .iter()
        .map(|w| w.since.as_str())
        .min()
        .unwrap_or(&first.since);
    let clock = elapsed_since(since).unwrap_or_default();
    format!("{stage}: waiting {clock} on {what} ({})", first.url)
}

/// What one delivery holds the release on: its lock, or the first answer of its webhook.
pub fn waiting_text(item: &Waiting) -> String {
    if let Some(ahead) = item.release.as_deref().filter(|_| item.on == "release") {
        return format!("queued behind release {ahead} of the same instance");
    }
    let what = match &item.lock {
        Some(lock) => format!("lock {lock}"),
        None => "the first answer".to_owned(),
    };
    let since = item.since.get(11..19).unwrap_or(&item.since);
    let attempts = match item.attempts {
        0 => String::new(),
        1 => ", 1 attempt".to_owned(),
        n => format!(", {n} attempts"),
    };
    let stuck = match item.delivery_status.as_str() {
        "failed" => "; its delivery ran out of attempts: release the lock by hand (lock force)",
        _ => "",
    };
    format!(
        "waiting since {since} on {what} of webhook {} ({}{attempts}){stuck}",
        item.webhook, item.url
    )
}

fn elapsed_since(rfc3339: &str) -> Option<String> {
    let since = parse_rfc3339(rfc3339)?;
    let seconds = (now_ms() - since).max(0) / 1000;
    Some(duration_text(seconds))
}

fn took(release: &Release) -> Option<String> {
    let start = parse_rfc3339(&release.created_at)?;
    let end = parse_rfc3339(release.finished_at.as_deref()?)?;
    let ms = (end - start).max(0);
    Some(format!("{:.1}s", ms as f64 / 1000.0))
}

/// `42s`, `3m 04s`, `2h 05m`.
pub fn duration_text(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The terminal's width from `COLUMNS` when the shell exports it; 80 otherwise.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(lock: Option<&str>) -> Waiting {
        Waiting {
            event: "before_release_complete".into(),
            on: "lock".into(),
            delivery: "dlv_1".into(),
            webhook: "whk_1".into(),
            url: "http://127.0.0.1:9/hook".into(),
            lock: lock.map(str::to_owned),
            attempts: 1,
            since: "2026-12-03T13:20:28Z".into(),
            ..Waiting::default()
        }
    }

    #[test]
    fn a_queued_release_names_the_release_ahead_of_it() {
        let ahead = Waiting {
            on: "release".into(),
            release: Some("rel_ahead".into()),
            ..Waiting::default()
        };
        assert_eq!(
            waiting_text(&ahead),
            "queued behind release rel_ahead of the same instance"
        );
    }

    #[test]
    fn a_lock_whose_delivery_ran_out_of_attempts_says_so() {
        let stuck = Waiting {
            delivery_status: "failed".into(),
            ..waiting(Some("lck_1"))
        };
        assert!(waiting_text(&stuck).contains("ran out of attempts"));
    }

    #[test]
    fn durations_read_in_the_largest_sensible_units() {
        assert_eq!(duration_text(42), "42s");
        assert_eq!(duration_text(184), "3m 04s");
        assert_eq!(duration_text(7500), "2h 05m");
    }

    #[test]
    fn a_wait_names_the_lock_the_webhook_and_its_address() {
        let text = waiting_text(&waiting(Some("lck_9")));
        assert_eq!(
            text,
            "waiting since 13:20:28 on lock lck_9 of webhook whk_1 \
             (http://127.0.0.1:9/hook, 1 attempt)"
        );
        let release = Release {
            stage: "before_release_complete".into(),
            state: "waiting".into(),
            waiting_on: vec![waiting(None), waiting(Some("lck_9"))],
            ..Release::default()
        };
        let status = status_text(&release);
        assert!(
            status.starts_with("before_release_complete: waiting "),
            "{status}"
        );
        assert!(
            status.ends_with(" on 2 deliveries (http://127.0.0.1:9/hook)"),
            "{status}"
        );
    }

    #[test]
    fn the_exit_code_tells_success_failure_and_cancel_apart() {
        let with = |stage: &str| Release {
            stage: stage.into(),
            ..Release::default()
        };
        assert_eq!(exit_code(&with("closed")), ExitCode::SUCCESS);
        assert_eq!(exit_code(&with("failed")), ExitCode::from(3));
        assert_eq!(exit_code(&with("cancelled")), ExitCode::from(4));
    }
}
