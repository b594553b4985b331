//! A run: which figures go on which backend, in what order, and the report they make.
//! Progress goes to stderr, the report alone to stdout.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use rand::Rng;

use crate::figures::{self, fan_out, footprint, resume, Bench};
use crate::machine::{self, Machine};
use crate::options::{BackendChoice, Options};
use crate::report::{Report, Row};
use crate::scratch::{self, Backend, Scratch};

pub async fn run(options: Options) -> anyhow::Result<()> {
    let bin = lockstep_binary(&options)?;
    let lockstep = describe(&bin)?;
    let backends = backends(&options).await?;
    let bench = Bench {
        bin,
        sizes: options.sizes(),
        clients: options.clients,
        scratch: Scratch::new(&options.postgres)?,
        admin_token: format!("lsk_bench_{:032x}", rand::rng().random::<u128>()),
    };

    let load_at_start = machine::load_average();
    let measured = measure(&bench, &options, &backends).await;
    let Bench { scratch, sizes, .. } = bench;
    scratch.clean(options.keep).await;
    let report = Report {
        machine: Machine::read(),
        mode: sizes.mode,
        lockstep,
        clients: options.clients,
        load: (load_at_start, machine::load_average()),
        rows: measured?,
    };
    if options.json {
        println!("{:#}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Every figure asked for, figure by figure and backend by backend, so the rows come out in
/// order.
async fn measure(
    bench: &Bench,
    options: &Options,
    backends: &[Backend],
) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let progress = |what: &str, backend: &str| {
        let at = started.elapsed().as_secs();
        eprintln!("lockstep-bench: [{at:>4} s] {what} on {backend}");
    };
    let mut rows = Vec::new();
    for &backend in backends.iter().filter(|_| options.wants(1)) {
        progress("figure 1, fan-out", backend.name());
        rows.extend(fan_out::measure(bench, backend).await?);
    }
    for &backend in backends
        .iter()
        .filter(|_| options.wants(2) || options.wants(3))
    {
        progress(
            "figures 2 and 3, lock-to-resume and event overhead",
            backend.name(),
        );
        rows.extend(resume::measure(bench, backend).await?);
    }
    if backends.contains(&Backend::Postgres) && options.wants(2) {
        progress("figure 2, lock-to-resume", "two PostgreSQL nodes");
        rows.extend(resume::measure_across_nodes(bench).await?);
    }
    for &backend in backends
        .iter()
        .filter(|_| options.wants(4) || options.wants(5))
    {
        progress("figures 4 and 5, parked releases and API", backend.name());
        rows.extend(figures::parked_then_api(bench, backend).await?);
    }
    for &backend in backends.iter().filter(|_| options.wants(6)) {
        progress("figure 6, footprint", backend.name());
        rows.extend(footprint::measure(bench, backend).await?);
    }
    if options.wants(6) {
        rows.push(footprint::binary_size(&bench.bin)?);
    }
    progress("done", "all backends");
    Ok(rows)
}

/// `--lockstep-bin`, or `lockstep` next to this binary: cargo builds both into the same
/// `target/<profile>/`.
fn lockstep_binary(options: &Options) -> anyhow::Result<PathBuf> {
    let bin = match &options.lockstep_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .context("finding this binary")?
            .with_file_name("lockstep"),
    };
    ensure!(
        bin.is_file(),
        "no lockstep binary at {}: build it (cargo build --release -p lockstep) or pass \
         --lockstep-bin",
        bin.display()
    );
    Ok(bin)
}

/// The binary's version and build profile, and the commit it was built from if git knows.
fn describe(bin: &std::path::Path) -> anyhow::Result<String> {
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", bin.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let profile = bin
        .parent()
        .and_then(|dir| dir.file_name())
        .map_or("unknown".into(), |name| name.to_string_lossy().into_owned());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    Ok(match commit {
        Some(commit) => format!("{version}, {profile} build, commit {commit}"),
        None => format!("{version}, {profile} build"),
    })
}

async fn backends(options: &Options) -> anyhow::Result<Vec<Backend>> {
    let reachable = scratch::postgres_reachable(&options.postgres).await;
    match options.backend {
        Some(BackendChoice::Sqlite) => Ok(vec![Backend::Sqlite]),
        Some(choice) if !reachable => {
            let choice = format!("{choice:?}").to_lowercase();
            bail!(
                "--backend {choice} needs PostgreSQL, which {} does not answer",
                options.postgres
            )
        }
        Some(BackendChoice::Postgres) => Ok(vec![Backend::Postgres]),
        Some(BackendChoice::Both) => Ok(vec![Backend::Sqlite, Backend::Postgres]),
        None if reachable => Ok(vec![Backend::Sqlite, Backend::Postgres]),
        None => {
            eprintln!(
                "lockstep-bench: PostgreSQL does not answer at {}; measuring SQLite only",
                options.postgres
            );
            Ok(vec![Backend::Sqlite])
        }
    }
}
