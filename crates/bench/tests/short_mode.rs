//! The benchmark tool's short mode, run end to end against the `lockstep` binary built beside
//! it, so the tool keeps working. Its figures are not checked: CI machines are too noisy for
//! speed assertions. Ignored by default since it takes most of a minute; CI runs it with
//! `cargo test --workspace --test short_mode -- --ignored`.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
#[ignore = "runs every figure in short mode (most of a minute); CI runs it"]
fn short_mode_measures_every_figure_on_every_backend_it_was_given() {
    let mut bench = Command::new(env!("CARGO_BIN_EXE_lockstep-bench"));
    bench.args(["--short", "--json"]).stderr(Stdio::inherit());
    // CI names its PostgreSQL server here, and then both backends must be measured.
    let postgres = std::env::var("LOCKSTEP_TEST_DATABASE_URL").ok();
    if let Some(server) = &postgres {
        bench.args(["--backend", "both", "--postgres", server]);
    }
    let output = bench.output().expect("running lockstep-bench");
    assert!(
        output.status.success(),
        "lockstep-bench failed: {}",
        output.status
    );

    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let rows = report["rows"].as_array().expect("rows");
    let figures: BTreeSet<u64> = rows.iter().filter_map(|r| r["figure"].as_u64()).collect();
    assert_eq!(figures, (1..=6).collect(), "every figure has a row");
    let backends: BTreeSet<&str> = rows.iter().filter_map(|r| r["backend"].as_str()).collect();
    assert!(backends.contains("sqlite"));
    if postgres.is_some() {
        assert!(backends.contains("postgres") && backends.contains("postgres, 2 nodes"));
    }
    for row in rows {
        let value = row["value"].as_f64().unwrap_or(-1.0);
        assert!(
            value.is_finite() && value >= 0.0,
            "a figure that is a number: {row}"
        );
    }
}
