//! Figure 5's log appends: receivers writing to releases' action logs, many at once, against
//! GET /healthz from as many clients (the same HTTP stack and one database read, nothing
//! written).

use std::sync::Arc;

use anyhow::ensure;

use super::{Bench, Session};
use crate::clients;
use crate::report::{Row, Unit};

pub async fn measure(
    bench: &Bench,
    session: &Session,
    parent_logs: Vec<i64>,
) -> anyhow::Result<Vec<Row>> {
    ensure!(!parent_logs.is_empty(), "no release to append to");
    let (n, time) = (bench.clients, bench.sizes.api_time);
    let hook = session.hook.clone();
    let logs = Arc::new(parent_logs);
    let appends = clients::for_time(n, time, move |i| {
        let (hook, log) = (hook.clone(), logs[i % logs.len()]);
        async move { hook.append_log(log).await }
    })
    .await?;

    let admin = session.admin.clone();
    let healthz = clients::for_time(n, time, move |_| {
        let admin = admin.clone();
        async move { admin.healthz().await }
    })
    .await?;

    let what = format!("log appends/s, {n} clients");
    let row = Row::new(5, what, session.backend_name(), Unit::PerSecond, appends);
    Ok(vec![
        row.against(healthz, format!("GET /healthz, {n} clients"))
    ])
}
