//! Latency samples and their percentiles.

use std::time::Duration;

/// Samples sorted once, so any percentile is a look-up.
#[derive(Debug, Clone)]
pub struct Distribution {
    sorted: Vec<Duration>,
}

impl Distribution {
    pub fn new(mut samples: Vec<Duration>) -> Distribution {
        samples.sort_unstable();
        Distribution { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The nearest-rank percentile: the smallest sample with at least `q` of them at or
    /// below it. Zero when there are no samples.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_sorted_samples() {
        let samples = (1..=100).rev().map(Duration::from_millis).collect();
        let spread = Distribution::new(samples);
        assert_eq!(spread.p50(), Duration::from_millis(50));
        assert_eq!(spread.p99(), Duration::from_millis(99));
        assert_eq!(spread.max(), Duration::from_millis(100));
        assert_eq!(Distribution::new(Vec::new()).p99(), Duration::ZERO);
    }
}
