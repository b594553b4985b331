//! When a failed delivery is tried again.
//!
//! The delay is a pure function of the schedule, the number of attempts so far and a jitter
//! sample, so it can be tested without a clock or a random source.

use std::time::Duration;

use crate::Invalid;

/// Each delay may move by up to this fraction either way, so receivers that failed together
/// are not retried together.
pub const JITTER: f64 = 0.2;

/// Bounds on a configured schedule.
pub const MAX_STEPS: usize = 20;
pub const MIN_STEP: Duration = Duration::from_secs(1);
pub const MAX_STEP: Duration = Duration::from_secs(24 * 3600);

/// The waits after the first, second, … failed attempt. Its length is the number of retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(Vec<Duration>);

impl Default for Schedule {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Schedule(vec![
            Duration::from_secs(5),
            minutes(1),
            minutes(5),
            minutes(30),
            minutes(120),
            minutes(300),
            minutes(600),
            minutes(600),
        ])
    }
}

impl Schedule {
    /// Parses a comma-separated list such as `5s,1m,5m,2h`. Values out of bounds are refused
    /// rather than capped, so a schedule never means something other than what was written.
    pub fn parse(text: &str, field: &str) -> Result<Schedule, Invalid> {
        let steps = text
            .split(',')
            .map(|part| parse_duration(part.trim()).ok_or(part.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|bad| {
                Invalid::new(
                    field,
                    format!("{bad:?} is not a duration like 30s, 5m or 2h"),
                )
            })?;
        Schedule::new(steps, field)
    }

    pub fn new(steps: Vec<Duration>, field: &str) -> Result<Schedule, Invalid> {
        if steps.is_empty() || steps.len() > MAX_STEPS {
            return Err(Invalid::new(
                field,
                format!("must have 1 to {MAX_STEPS} steps"),
            ));
        }
        if let Some(bad) = steps.iter().find(|s| **s < MIN_STEP || **s > MAX_STEP) {
            return Err(Invalid::new(
                field,
                format!("step of {}s is outside 1s to 24h", bad.as_secs()),
            ));
        }
        Ok(Schedule(steps))
    }

    pub fn steps(&self) -> &[Duration] {
        &self.0
    }

    /// All attempts a delivery may have: the first and one per step.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    pub fn longest(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or(MIN_STEP)
    }

    /// The wait after `attempts` failed attempts, or `None` when none is left.
    /// `jitter` is a sample in [-1, 1] scaling the ±20 % spread.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Option<Duration> {
        let base = *self.0.get((attempts as usize).checked_sub(1)?)?;
        let factor = 1.0 + JITTER * jitter.clamp(-1.0, 1.0);
        Some(base.mul_f64(factor))
    }

    /// The wait when the receiver asked, with `Retry-After`, for at least `asked`: never
    /// sooner than asked, never later than the longest step.
    pub fn honour_retry_after(&self, scheduled: Duration, asked: Duration) -> Duration {
        scheduled.max(asked.min(self.longest()))
    }

    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|d| format!("{}s", d.as_secs())).collect();
        parts.join(",")
    }
}

/// `30s`, `5m`, `2h`, `5d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_the_documented_one() {
        let s = Schedule::default();
        assert_eq!(s.to_text(), "5s,60s,300s,1800s,7200s,18000s,36000s,36000s");
        assert_eq!(s.max_attempts(), 9);
    }

    #[test]
    fn delay_follows_the_schedule_within_twenty_percent() {
        let s = Schedule::default();
        assert_eq!(s.delay(0, 0.0), None);
        assert_eq!(s.delay(1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(s.delay(1, 1.0), Some(Duration::from_secs(6)));
        assert_eq!(s.delay(1, -1.0), Some(Duration::from_secs(4)));
        assert_eq!(s.delay(2, 5.0), Some(Duration::from_secs(72)));
        assert_eq!(s.delay(8, 0.0), Some(Duration::from_secs(36000)));
        assert_eq!(s.delay(9, 0.0), None);
    }

    #[test]
    fn retry_after_delays_but_never_past_the_longest_step() {
        let s = Schedule::parse("5s,1m", "retry").unwrap();
        let five = Duration::from_secs(5);
        assert_eq!(
            s.honour_retry_after(five, Duration::from_secs(30)),
            Duration::from_secs(30)
        );
        assert_eq!(s.honour_retry_after(five, Duration::from_secs(3)), five);
        assert_eq!(
            s.honour_retry_after(five, Duration::from_secs(9999)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn schedules_out_of_bounds_are_refused_not_capped() {
        assert!(Schedule::parse("1s,2s", "retry").is_ok());
        for bad in ["", "0s", "25h", "5x", "1s,,2s", &vec!["1s"; 21].join(",")] {
            let err = Schedule::parse(bad, "retry").unwrap_err();
            assert_eq!(err.field, "retry", "{bad:?}");
        }
    }
}
