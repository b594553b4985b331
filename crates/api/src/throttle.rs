//! Slows down token guessing: an address that fails authentication too often is answered
//! 429 for the rest of its window, whatever token it sends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts one address may make per window.
pub const MAX_FAILURES: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; past this, windows that ended are forgotten first.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct AuthThrottle {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthThrottle {
    /// How long `ip` must wait before trying again, if it is over its limit.
    pub fn wait(&self, ip: IpAddr) -> Option<Duration> {
        let windows = self.windows.lock().ok()?;
        let (start, failures) = *windows.get(&ip)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (failures >= MAX_FAILURES).then_some(left)
    }

    /// Counts a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let window = windows.entry(ip).or_insert((Instant::now(), 0));
        if window.0.elapsed() >= WINDOW {
            *window = (Instant::now(), 0);
        }
        window.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_back_only_after_too_many_failures() {
        let throttle = AuthThrottle::default();
        let (ip, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed(ip);
        }
        assert_eq!(throttle.wait(ip), None);
        throttle.failed(ip);
        assert!(throttle.wait(ip).is_some_and(|d| d <= WINDOW));
        assert_eq!(throttle.wait(other), None);
    }
}
