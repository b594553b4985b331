//! The figures of issue 7, each measured beside a ceiling taken in the same run.
//!
//! - [`fan_out`]: 1, deliveries per second end to end.
//! - [`resume`]: 2 and 3, lock-to-resume latency and event overhead, also across two nodes.
//! - [`parked`]: 4, what parked releases cost and how fast they are let go; and 5's rate of
//!   lock releases, taken as they are let go.
//! - [`api_calls`]: 5, log appends per second.
//! - [`footprint`]: 6, start-up time, idle memory, binary size.

pub mod api_calls;
pub mod fan_out;
pub mod footprint;
pub mod parked;
pub mod resume;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;

use crate::api::Api;
use crate::clients;
use crate::options::Sizes;
use crate::report::Row;
use crate::scratch::{Backend, Database, Scratch};
use crate::server::{Launch, Server};
use crate::sink::{Arrival, Sink};

/// The three events of every release, in the order it fires them.
pub const EVENTS: [&str; 3] = ["before_release", "before_release_complete", "after_release"];

/// What every figure runs with.
pub struct Bench {
    pub bin: PathBuf,
    pub sizes: Sizes,
    pub clients: usize,
    pub scratch: Scratch,
    pub admin_token: String,
}

impl Bench {
    pub async fn serve(&self, database: &Database, node: &str) -> anyhow::Result<Server> {
        Server::start(Launch {
            bin: &self.bin,
            database,
            admin_token: &self.admin_token,
            node,
            log: self.scratch.file(&format!("{node}.log")),
        })
        .await
    }
}

/// How long to wait for `n` things that each take a few milliseconds at worst: generous,
/// since a limit only turns a hung run into an error.
pub fn limit_for(n: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(20) * n as u32
}

/// One server on a fresh database, with an admin client, a receiver's client (a token of
/// scope `hook`, as middleware would hold) and a sink.
pub struct Session {
    pub database: Database,
    pub server: Server,
    pub admin: Api,
    pub hook: Api,
    pub sink: Sink,
}

impl Session {
    pub async fn open(bench: &Bench, backend: Backend, node: &str) -> anyhow::Result<Session> {
        let database = bench.scratch.database(backend).await?;
        let server = bench.serve(&database, node).await?;
        let admin = Api::new(&server.base, &bench.admin_token);
        let hook = admin.with_token(&admin.create_token(&["hook"]).await?);
        let sink = Sink::start().await?;
        Ok(Session {
            database,
            server,
            admin,
            hook,
            sink,
        })
    }

    /// Instances `{prefix}-0` to `{prefix}-{n-1}`, one per release, since releases of one
    /// instance queue behind each other.
    pub async fn instances(
        &self,
        prefix: &str,
        n: usize,
        clients: usize,
    ) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        let admin = self.admin.clone();
        clients::each(ids.clone(), clients, move |id| {
            let admin = admin.clone();
            async move { admin.create_instance(&id).await }
        })
        .await?;
        Ok(ids)
    }

    /// The next `n` requests at the sink, checking every second that the server still runs,
    /// so a server that died fails the figure at once rather than at the time limit.
    pub async fn arrivals(&mut self, n: usize) -> anyhow::Result<Vec<Arrival>> {
        let (limit, started) = (limit_for(n), std::time::Instant::now());
        let mut arrived = Vec::with_capacity(n);
        while arrived.len() < n {
            self.server.check_running()?;
            let got = arrived.len();
            ensure!(
                started.elapsed() < limit,
                "the sink got {got} of {n} requests in {limit:?}"
            );
            let more = self.sink.take(n - got, Duration::from_secs(1)).await?;
            arrived.extend(more);
        }
        Ok(arrived)
    }

    /// Starts a release on each instance, `clients` calls at once.
    pub async fn start_releases(
        &self,
        instances: Vec<String>,
        clients: usize,
    ) -> anyhow::Result<()> {
        let admin = self.admin.clone();
        clients::each(instances, clients, move |instance| {
            let admin = admin.clone();
            async move { admin.start_release(&instance).await.map(drop) }
        })
        .await
        .map(drop)
    }

    pub fn backend_name(&self) -> &'static str {
        self.database.backend.name()
    }

    /// Stops the server. A failed measurement is told together with how the server ended,
    /// if it ended before the bench stopped it.
    pub async fn finish<T>(mut self, measured: anyhow::Result<T>) -> anyhow::Result<T> {
        let measured = match measured {
            Err(err) => Err(self.server.explain(err).await),
            ok => ok,
        };
        self.server.stop().await;
        measured
    }
}

/// Figures 4 and 5 on one server: the parked releases, let go, leave logs to append to.
pub async fn parked_then_api(bench: &Bench, backend: Backend) -> anyhow::Result<Vec<Row>> {
    let mut session = Session::open(bench, backend, "bench-parked").await?;
    let measured = async {
        let parked = parked::measure(bench, &mut session).await?;
        let appends = api_calls::measure(bench, &session, parked.parent_logs).await?;
        Ok(parked.rows.into_iter().chain(appends).collect())
    }
    .await;
    session.finish(measured).await
}
