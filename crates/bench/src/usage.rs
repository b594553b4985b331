//! A process's resident memory and CPU time, read from `/proc` (Linux only).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};

/// Resident memory (`VmRSS`) of a running process.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:")) else {
        bail!("{path} has no VmRSS line");
    };
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("reading the VmRSS line of {path}"))?;
    Ok(kib * 1024)
}

/// CPU time a process has used so far, user and system together.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces and parentheses; the fields that follow the last
    // ')' are fixed, starting with the state (field 3), so utime and stime (fields 14 and
    // 15) are the 12th and 13th.
    let after_name = stat
        .rsplit_once(')')
        .with_context(|| format!("{path} is not a stat line"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        let field = fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?;
        field
            .parse()
            .with_context(|| format!("field {i} of {path}"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

/// The kernel's clock ticks per second, in which `/proc` counts CPU time.
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100)
    })
}
