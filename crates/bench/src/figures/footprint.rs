//! Figure 6: start-up time to a served /healthz, idle resident memory, and binary size.
//! Start-up is timed on restarts of a database already migrated, as an operator restarting
//! the service meets it, and set against the same binary starting and exiting
//! (`lockstep --version`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use super::Bench;
use crate::api::Api;
use crate::latency::Distribution;
use crate::report::{Row, Unit};
use crate::scratch::Backend;

/// How long a started server is left alone before its idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

pub async fn measure(bench: &Bench, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let starts = bench.sizes.starts;
    let database = bench.scratch.database(backend).await?;
    let (mut times, mut idle_rss) = (Vec::with_capacity(starts), 0);
    // The first start creates the schema and is not counted.
    for start in 0..=starts {
        let spawned = Instant::now();
        let server = bench.serve(&database, "bench-footprint").await?;
        Api::new(&server.base, "").healthz().await?;
        let took = spawned.elapsed();
        if start == starts {
            tokio::time::sleep(SETTLE).await;
            idle_rss = server.resident_bytes()?;
        }
        server.stop().await;
        if start > 0 {
            times.push(took);
        }
    }

    let started = Distribution::new(times);
    let floor = process_floor(&bench.bin, starts).await?;
    let millis = |d: Duration| d.as_secs_f64() * 1000.0;
    let what = format!("start-up to a served /healthz, median of {starts} restarts");
    let start_up = Row::new(6, what, backend.name(), Unit::Millis, millis(started.p50()))
        .against(millis(floor.p50()), "`lockstep --version`, spawn to exit");
    let mib = idle_rss as f64 / (1u64 << 20) as f64;
    let idle = Row::new(6, "idle resident memory", backend.name(), Unit::MiB, mib);
    Ok(vec![start_up, idle])
}

/// The size of the binary measured; it does not depend on the backend.
pub fn binary_size(bin: &Path) -> anyhow::Result<Row> {
    let bytes = std::fs::metadata(bin)
        .with_context(|| format!("reading the size of {}", bin.display()))?
        .len();
    let mib = bytes as f64 / (1u64 << 20) as f64;
    Ok(Row::new(6, "binary size", "—", Unit::MiB, mib))
}

/// The ceiling of start-up: the same binary run `starts` times with `--version`.
async fn process_floor(bin: &Path, starts: usize) -> anyhow::Result<Distribution> {
    let mut times = Vec::with_capacity(starts);
    for _ in 0..starts {
        let spawned = Instant::now();
        let status = tokio::process::Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .await
            .with_context(|| format!("running {} --version", bin.display()))?;
        ensure!(
            status.success(),
            "{} --version failed: {status}",
            bin.display()
        );
        times.push(spawned.elapsed());
    }
    Ok(Distribution::new(times))
}
