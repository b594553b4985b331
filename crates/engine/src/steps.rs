//! Steps: the commands of a release's core phase.
//!
//! A step runs as `sh -c RUN` with a cleared environment: only `PATH`, `HOME`, `LANG` and
//! the release's parameters (`LOCKSTEP_TAG`, …) are passed. Parameters are never spliced
//! into the command line, and the service's own secrets never reach a step.
//!
//! Progress is stored as the index of the next step. A step cut short by a crash has not
//! advanced that index, so it runs again on restart: steps should be safe to repeat.

use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, Instrument};

use lockstep_core::Stage;
use lockstep_store::instances::StepDef;
use lockstep_store::logs::NewEntry;
use lockstep_store::releases::{Ending, Release};

use crate::runner::{end, enter_event};
use crate::Engine;

/// The longest output line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// How many output lines of one step reach the action log.
pub const MAX_LINES: usize = 10_000;

/// Runs the release's next step, or fires `before_release_complete` once none is left.
pub(crate) async fn run_next(
    engine: &Engine,
    release: &Release,
) -> anyhow::Result<super::runner::Outcome> {
    let instance = engine.store().instance(&release.instance_id).await?;
    let index = release.step_index as usize;
    let Some(step) = instance.steps.get(index).cloned() else {
        return enter_event(engine, release, Stage::BeforeReleaseComplete).await;
    };
    if engine.is_shutting_down() {
        return Ok(super::runner::Outcome::Parked);
    }
    let (stop_tx, stop_rx) = oneshot::channel();
    {
        let mut running = engine
            .inner
            .running_steps
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if running.contains_key(&release.id) {
            return Ok(super::runner::Outcome::Parked);
        }
        running.insert(release.id.clone(), stop_tx);
    }
    let total = instance.steps.len();
    let (engine, release) = (engine.clone(), release.clone());
    engine
        .inner
        .step_tasks
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let span = tracing::info_span!("step", release_id = release.id, step = step.name);
    tokio::spawn(
        async move {
            let result = run_step(&engine, &release, &step, index, total, stop_rx).await;
            if let Ok(mut running) = engine.inner.running_steps.lock() {
                running.remove(&release.id);
            }
            if let Err(err) = result {
                tracing::warn!(error = format!("{err:#}"), "step could not be run");
            }
            engine
                .inner
                .step_tasks
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            engine.wake(&release.id);
        }
        .instrument(span),
    );
    Ok(super::runner::Outcome::Parked)
}

async fn run_step(
    engine: &Engine,
    release: &Release,
    step: &StepDef,
    index: usize,
    total: usize,
    stop: oneshot::Receiver<&'static str>,
) -> anyhow::Result<()> {
    let store = engine.store();
    let message = format!("step {}/{total} {:?} started", index + 1, step.name);
    let entry = NewEntry::under(&release.id, release.parent_log, "step", message);
    let step_log = store.append_log(&entry).await?;
    engine.changes().fire(&release.id);
    if let Some(pid) = release.step_pid {
        reap_leftover(engine, release, step_log, pid).await?;
    }
    let started = Instant::now();
    let mut child = command(step, release)
        .spawn()
        .with_context(|| format!("starting step {:?}", step.name))?;
    store
        .set_step_pid(&release.id, child.id().map(i64::from))
        .await?;

    let finished = tokio::select! {
        status = log_until_exit(engine, release, step_log, &mut child) => Ok(status?),
        why = stop => Err(why.unwrap_or("the release ended")),
    };
    store.set_step_pid(&release.id, None).await?;
    let status = match finished {
        Ok(status) => status,
        Err(why) => {
            kill_group(&mut child).await;
            let note = format!("step stopped: {why}");
            let entry = NewEntry::under(&release.id, step_log, "step", note).status("error");
            store.append_log(&entry).await?;
            return Ok(());
        }
    };

    let seconds = started.elapsed().as_secs_f64();
    if status.success() {
        let note = format!("step {:?} finished in {seconds:.1}s", step.name);
        let entry = NewEntry::under(&release.id, step_log, "step", note).status("success");
        store.append_log(&entry).await?;
        store.set_step_index(&release.id, index as i64 + 1).await?;
        info!(seconds, "step finished");
        return Ok(());
    }
    let code = status
        .code()
        .map_or("a signal".to_owned(), |c| format!("code {c}"));
    let reason = format!("step {:?} exited with {code}", step.name);
    let entry = NewEntry::under(&release.id, step_log, "step", reason.clone()).status("error");
    store.append_log(&entry).await?;
    end(engine, release, Ending::Failed, &reason, "lockstep").await?;
    Ok(())
}

/// Logs the step's output line by line until it exits, and returns how it exited.
async fn log_until_exit(
    engine: &Engine,
    release: &Release,
    step_log: i64,
    child: &mut Child,
) -> anyhow::Result<std::process::ExitStatus> {
    let store = engine.store();
    let (lines_tx, mut lines_rx) = mpsc::channel::<(bool, String)>(256);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, false, lines_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, true, lines_tx.clone()));
    }
    drop(lines_tx);

    let mut logged = 0usize;
    let mut dropped = 0usize;
    while let Some((is_stderr, line)) = lines_rx.recv().await {
        if logged >= MAX_LINES {
            dropped += 1;
            continue;
        }
        let status = if is_stderr { "warning" } else { "info" };
        let entry = NewEntry::under(&release.id, step_log, "output", line).status(status);
        store.append_log(&entry).await?;
        engine.changes().fire(&release.id);
        logged += 1;
    }
    if dropped > 0 {
        let note = format!("{dropped} more output lines were not logged");
        store
            .append_log(&NewEntry::under(&release.id, step_log, "output", note))
            .await?;
    }
    Ok(child.wait().await?)
}

/// A step that was running when the service died may still be running: its process group
/// is killed before the step starts again, if it is still the one this release started
/// (its environment names the release, so a reused process id is never touched).
async fn reap_leftover(
    engine: &Engine,
    release: &Release,
    step_log: i64,
    pid: i64,
) -> anyhow::Result<()> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let marker = format!("LOCKSTEP_RELEASE_ID={}", release.id);
    let alive = environ
        .split(|b| *b == 0)
        .any(|var| var == marker.as_bytes());
    if alive {
        let group = format!("-{pid}");
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .await;
    }
    let note = match alive {
        true => {
            "the service stopped while this step ran; its leftover processes were killed \
                 and the step runs again"
        }
        false => "the service stopped while this step ran; the step runs again",
    };
    let entry = NewEntry::under(&release.id, step_log, "step", note.to_owned()).status("warning");
    engine.store().append_log(&entry).await?;
    Ok(())
}

/// Kills the step and everything it started: it runs in a process group of its own.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let group = format!("-{pid}");
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .await;
    }
    let _ = child.kill().await;
}

/// The step's command: its text goes to `sh -c` untouched; parameters go in the environment.
fn command(step: &StepDef, release: &Release) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&step.run)
        .env_clear()
        .env("LOCKSTEP_TAG", &release.tag)
        .env("LOCKSTEP_ZERO_DOWNTIME", release.zero_downtime.to_string())
        .env("LOCKSTEP_INSTANCE", &release.instance_id)
        .env("LOCKSTEP_RELEASE_ID", &release.id)
        .env("LOCKSTEP_PARENT_LOG", release.parent_log.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in ["PATH", "HOME", "LANG"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// Splits a stream into lines of at most [`MAX_LINE`] bytes, without ever buffering more.
async fn read_lines(
    mut from: impl AsyncRead + Unpin,
    is_stderr: bool,
    to: mpsc::Sender<(bool, String)>,
) {
    let mut line: Vec<u8> = Vec::new();
    let mut overflow = false;
    let mut chunk = [0u8; 8192];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned();
                let text = if overflow { format!("{text}...") } else { text };
                if to.send((is_stderr, text)).await.is_err() {
                    return;
                }
                line.clear();
                overflow = false;
            } else if line.len() < MAX_LINE {
                line.push(byte);
            } else {
                overflow = true;
            }
        }
    }
    if !line.is_empty() {
        let _ = to
            .send((is_stderr, String::from_utf8_lossy(&line).into_owned()))
            .await;
    }
}
