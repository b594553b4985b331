//! The report: one row per figure and backend, each beside its ceiling and their ratio,
//! printed as a Markdown table (so BENCHMARKS.md can hold it as printed) or as JSON.

use serde_json::{json, Value};

use crate::machine::Machine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    Millis,
    CpuMillis,
    Seconds,
    MiB,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::PerSecond => "per_second",
            Unit::Millis => "ms",
            Unit::CpuMillis => "cpu_ms",
            Unit::Seconds => "s",
            Unit::MiB => "MiB",
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Unit::PerSecond => format!("{} /s", thousands(value)),
            Unit::Millis => format!("{} ms", significant(value)),
            Unit::CpuMillis => format!("{} ms CPU", significant(value)),
            Unit::Seconds => format!("{} s", significant(value)),
            Unit::MiB => format!("{} MiB", significant(value)),
        }
    }
}

/// A figure and what it is set against; `ceiling_is` says what the ceiling measured.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: u8,
    pub what: String,
    pub backend: String,
    pub unit: Unit,
    pub value: f64,
    pub ceiling: Option<f64>,
    pub ceiling_is: String,
}

impl Row {
    pub fn new(figure: u8, what: impl Into<String>, backend: &str, unit: Unit, value: f64) -> Row {
        Row {
            figure,
            what: what.into(),
            backend: backend.to_owned(),
            unit,
            value,
            ceiling: None,
            ceiling_is: String::new(),
        }
    }

    /// The same quantity measured without Lockstep in the way, or with nothing to do.
    pub fn against(mut self, ceiling: f64, ceiling_is: impl Into<String>) -> Row {
        self.ceiling = Some(ceiling);
        self.ceiling_is = ceiling_is.into();
        self
    }

    /// The figure divided by its ceiling, when both are there and the ceiling is not zero.
    pub fn ratio(&self) -> Option<f64> {
        self.ceiling.filter(|c| *c > 0.0).map(|c| self.value / c)
    }
}

pub struct Report {
    pub machine: Machine,
    pub mode: &'static str,
    /// The binary measured, with its version and build profile.
    pub lockstep: String,
    pub clients: usize,
    /// The one-minute load average when the run started and when it ended.
    pub load: (Option<f64>, Option<f64>),
    pub rows: Vec<Row>,
}

impl Report {
    pub fn table(&self) -> String {
        let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
        let mut out = format!(
            "Lockstep benchmarks, {} mode: {}\nMachine: {}; load average {} at the start, {} at \
             the end; {} concurrent API clients\n\n",
            self.mode,
            self.lockstep,
            self.machine.summary(),
            load(self.load.0),
            load(self.load.1),
            self.clients
        );
        out.push_str("| # | figure | backend | Lockstep | ceiling | ÷ ceiling | ceiling is |\n");
        out.push_str("|--:|---|---|--:|--:|--:|---|\n");
        for row in &self.rows {
            out.push_str(&table_line(row));
        }
        out
    }

    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self.rows.iter().map(row_json).collect();
        json!({
            "mode": self.mode,
            "lockstep": self.lockstep,
            "machine": self.machine.json(),
            "clients": self.clients,
            "load_average": {"start": self.load.0, "end": self.load.1},
            "rows": rows,
        })
    }
}

fn table_line(row: &Row) -> String {
    let ceiling = row.ceiling.map_or("—".into(), |c| row.unit.format(c));
    let ratio = row
        .ratio()
        .map_or("—".into(), |r| format!("{}×", significant(r)));
    let ceiling_is = if row.ceiling_is.is_empty() {
        "—"
    } else {
        &row.ceiling_is
    };
    format!(
        "| {} | {} | {} | {} | {ceiling} | {ratio} | {ceiling_is} |\n",
        row.figure,
        row.what,
        row.backend,
        row.unit.format(row.value)
    )
}

fn row_json(row: &Row) -> Value {
    json!({
        "figure": row.figure,
        "what": row.what,
        "backend": row.backend,
        "unit": row.unit.name(),
        "value": row.value,
        "ceiling": row.ceiling,
        "ceiling_is": row.ceiling_is,
        "ratio": row.ratio(),
    })
}

/// Three significant digits, without exponents: 0.0123, 1.23, 12.3, 123, 1,234.
fn significant(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return "0".into();
    }
    if magnitude >= 1000.0 {
        return thousands(value);
    }
    let decimals = match magnitude {
        m if m >= 100.0 => 0,
        m if m >= 10.0 => 1,
        m if m >= 1.0 => 2,
        m if m >= 0.1 => 3,
        m if m >= 0.01 => 4,
        _ => 5,
    };
    format!("{value:.decimals$}")
}

/// A whole number with thousands separated: 12,345.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0.0 {
        grouped.insert(0, '-');
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits_and_group_thousands() {
        assert_eq!(significant(0.01234), "0.0123");
        assert_eq!(significant(1.234), "1.23");
        assert_eq!(significant(123.4), "123");
        assert_eq!(significant(0.0), "0");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }

    #[test]
    fn a_ratio_needs_a_ceiling_above_zero() {
        let row = Row::new(1, "x", "sqlite", Unit::PerSecond, 50.0);
        assert_eq!(row.clone().against(200.0, "c").ratio(), Some(0.25));
        assert_eq!(row.clone().against(0.0, "c").ratio(), None);
        assert_eq!(row.ratio(), None);
    }
}
