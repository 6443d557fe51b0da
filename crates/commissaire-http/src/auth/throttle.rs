//! Slowing down password guessing: after `failures` refused requests that
//! carried credentials from one client address (each within
//! `window_seconds` of the one before), each further refusal of that
//! address is answered only after a delay that doubles from 100 ms up to
//! `max_delay_seconds`. A request from it that authenticates clears it.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

/// The server file's `authentication-throttle` member.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Refusals of one address answered at once (default 5).
    pub failures: u32,
    /// How long an address's refusals are remembered after its last one (default 60 s).
    pub window_seconds: f64,
    /// The longest delay (default 5 s; 0 turns the throttle off).
    pub max_delay_seconds: f64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            failures: 5,
            window_seconds: 60.0,
            max_delay_seconds: 5.0,
        }
    }
}

impl ThrottleSettings {
    /// No delay ever (for tests that send many wrong passwords on purpose).
    pub const OFF: ThrottleSettings = ThrottleSettings {
        failures: 0,
        window_seconds: 60.0,
        max_delay_seconds: 0.0,
    };

    /// Checks the numbers; the error names the member.
    pub fn check(&self) -> Result<(), String> {
        if !(self.window_seconds > 0.0 && self.window_seconds <= 86_400.0) {
            return Err("window_seconds must be a number of seconds above 0, at most 86400".into());
        }
        if !(0.0..=60.0).contains(&self.max_delay_seconds) {
            return Err("max_delay_seconds must be a number of seconds from 0 to 60".into());
        }
        Ok(())
    }
}

/// The first delay once an address is past its free refusals.
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// Refusals per client address.
pub struct FailureThrottle {
    settings: ThrottleSettings,
    refusals: moka::sync::Cache<IpAddr, u32>,
}

impl FailureThrottle {
    /// A throttle with `settings`.
    pub fn new(settings: ThrottleSettings) -> Self {
        FailureThrottle {
            settings,
            refusals: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs_f64(settings.window_seconds))
                .build(),
        }
    }

    /// Counts a refusal of `ip`: how many in a row it has had, and how long
    /// to hold this answer.
    pub fn refused(&self, ip: IpAddr) -> (u32, Duration) {
        let n = self
            .refusals
            .entry(ip)
            .and_upsert_with(|seen| seen.map_or(1, |n| n.into_value().saturating_add(1)))
            .into_value();
        (n, self.delay(n))
    }

    /// `ip` authenticated: its refusals are forgotten.
    pub fn accepted(&self, ip: IpAddr) {
        self.refusals.invalidate(&ip);
    }

    /// The delay of the `n`th refusal in a row.
    fn delay(&self, n: u32) -> Duration {
        let max = Duration::from_secs_f64(self.settings.max_delay_seconds);
        if n <= self.settings.failures || max.is_zero() {
            return Duration::ZERO;
        }
        let doublings = (n - self.settings.failures - 1).min(16);
        (FIRST_DELAY * 2u32.pow(doublings)).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_past_the_free_ones_wait_longer_and_longer_and_success_forgets() {
        let t = FailureThrottle::new(ThrottleSettings {
            failures: 2,
            window_seconds: 60.0,
            max_delay_seconds: 0.3,
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let delays: Vec<u128> = (0..5).map(|_| t.refused(ip).1.as_millis()).collect();
        assert_eq!(delays, [0, 0, 100, 200, 300]);
        assert_eq!(t.refused(other), (1, Duration::ZERO), "per address");
        t.accepted(ip);
        assert_eq!(t.refused(ip), (1, Duration::ZERO));
        let off = FailureThrottle::new(ThrottleSettings::OFF);
        assert!((0..20).all(|_| off.refused(ip).1.is_zero()));
        let bad = ThrottleSettings {
            window_seconds: 0.0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
