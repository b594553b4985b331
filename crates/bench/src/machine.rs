//! What the run ran on: cores, memory, processor and kernel, as Linux reports them.

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub processor: String,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: total_memory().unwrap_or(0),
            processor: processor().unwrap_or_else(|| "unknown processor".into()),
            kernel: kernel().unwrap_or_else(|| "unknown kernel".into()),
        }
    }

    pub fn summary(&self) -> String {
        let gib = self.memory_bytes as f64 / (1u64 << 30) as f64;
        format!(
            "{} cores, {gib:.1} GiB memory, {}, Linux {}",
            self.cores, self.processor, self.kernel
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "cores": self.cores,
            "memory_bytes": self.memory_bytes,
            "processor": self.processor,
            "kernel": self.kernel,
        })
    }
}

/// The one-minute load average: how busy the machine was besides the bench, roughly.
pub fn load_average() -> Option<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next()?.parse().ok()
}

fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn processor() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn kernel() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(release.trim().to_owned())
}
