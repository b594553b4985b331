//! The counters and histograms `/metrics` shows. Gauges that mirror stored state (releases
//! by stage, open locks) are read from the database at scrape time instead.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

#[derive(Clone)]
pub struct Metrics {
    attempts: Family<Labels, Counter>,
    deliveries_created: Counter,
    deliveries_finished: Family<Labels, Counter>,
    releases_ended: Family<Labels, Counter>,
    attempt_seconds: Histogram,
    releases_by_stage: Family<Labels, Gauge>,
    deliveries_by_status: Family<Labels, Gauge>,
    open_locks: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ];
        Metrics {
            attempts: Family::default(),
            deliveries_created: Counter::default(),
            deliveries_finished: Family::default(),
            releases_ended: Family::default(),
            attempt_seconds: Histogram::new(buckets),
            releases_by_stage: Family::default(),
            deliveries_by_status: Family::default(),
            open_locks: Gauge::default(),
        }
    }
}

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_owned(), value.to_owned())]
}

impl Metrics {
    pub fn attempt(&self, outcome: &str, seconds: f64) {
        self.attempts
            .get_or_create(&label("outcome", outcome))
            .inc();
        self.attempt_seconds.observe(seconds);
    }

    pub fn deliveries_created(&self, n: usize) {
        self.deliveries_created.inc_by(n as u64);
    }

    pub fn delivery_finished(&self, outcome: &str) {
        self.deliveries_finished
            .get_or_create(&label("outcome", outcome))
            .inc();
    }

    pub fn release_ended(&self, state: &str) {
        self.releases_ended
            .get_or_create(&label("state", state))
            .inc();
    }

    /// Renders every metric in the Prometheus text format, with the stored-state gauges
    /// set from the counts given.
    pub fn render(
        &self,
        releases_by_stage: &[(String, i64)],
        deliveries_by_status: &[(String, i64)],
        open_locks: i64,
    ) -> String {
        for (stage, n) in releases_by_stage {
            self.releases_by_stage
                .get_or_create(&label("stage", stage))
                .set(*n);
        }
        for (status, n) in deliveries_by_status {
            self.deliveries_by_status
                .get_or_create(&label("status", status))
                .set(*n);
        }
        self.open_locks.set(open_locks);

        let mut registry = Registry::with_prefix("lockstep");
        registry.register(
            "attempts",
            "Webhook attempts by outcome",
            self.attempts.clone(),
        );
        registry.register(
            "deliveries_created",
            "Deliveries created",
            self.deliveries_created.clone(),
        );
        registry.register(
            "deliveries_finished",
            "Deliveries that succeeded or ran out of attempts",
            self.deliveries_finished.clone(),
        );
        registry.register(
            "releases_ended",
            "Releases ended, by state",
            self.releases_ended.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Duration of webhook attempts",
            self.attempt_seconds.clone(),
        );
        registry.register(
            "releases",
            "Releases by stage",
            self.releases_by_stage.clone(),
        );
        registry.register(
            "deliveries",
            "Deliveries by status",
            self.deliveries_by_status.clone(),
        );
        registry.register(
            "open_locks",
            "Locks holding a release",
            self.open_locks.clone(),
        );
        let mut text = String::new();
        let _ = encode(&mut text, &registry);
        text
    }
}
