//! The retry policy: a pure function from (error class, attempt, hint) to a
//! decision, and the full-jitter backoff it uses.
//!
//! Owns no clock, no randomness source and no sleeping: the caller passes a
//! uniform random number in `[0, 1)` and does the waiting. That keeps the
//! policy testable as a table. Rate control across calls is `rate`'s job.

use std::time::Duration;

use crate::api::error::ErrorClass;

/// Attempts per id, first call included. Five gives four retries, which at
/// the backoff below spans several seconds: enough to ride out a throttling
/// burst or a brief 5xx spell, not so much that a dead service is hammered.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Throttled answers allowed per id, as a multiple of `max_attempts`. A
/// throttled call did no work and says "slower", not "broken": it gets more
/// patience than a 5xx, while the growing backoff spreads the retries out.
pub(crate) const THROTTLED_ATTEMPTS_FACTOR: u32 = 4;

/// First backoff ceiling. 100 ms is the floor the Tea SDKs clamp to.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// Largest backoff ceiling: AWS standard retry mode's 20 s cap.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(20);

/// Longest server hint we obey. A hint beyond this is clamped, so that a
/// misbehaving header cannot park the run for hours (Tea SDKs clamp at 120 s).
pub(crate) const MAX_HINT: Duration = Duration::from_secs(120);

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The answer is final for this id: record it (a miss or a failure).
    Stop,
    /// Wait this long, then try again with a fresh nonce.
    RetryAfter(Duration),
    /// Every further call would fail: stop the whole run.
    AbortRun,
}

/// The retry settings of a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts per id, first call included (at least 1).
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: DEFAULT_MAX_ATTEMPTS, base: BACKOFF_BASE, cap: BACKOFF_CAP }
    }
}

impl RetryPolicy {
    /// Decides what follows a failed call of `class`, the `failures`-th
    /// (1-based) failure of that class for this id. Transient failures are
    /// bounded by `max_attempts`, throttled ones by
    /// `max_attempts * THROTTLED_ATTEMPTS_FACTOR`. `hint` is the server's
    /// requested wait, `unit` a uniform random number in `[0, 1)`.
    pub(crate) fn decide(&self, class: ErrorClass, failures: u32, hint: Option<Duration>, unit: f64) -> Decision {
        let limit = match class {
            ErrorClass::Fatal => return Decision::AbortRun,
            ErrorClass::Missing | ErrorClass::BadRequest => return Decision::Stop,
            ErrorClass::Transient => self.max_attempts,
            ErrorClass::Throttled => self.max_attempts.saturating_mul(THROTTLED_ATTEMPTS_FACTOR),
        };
        if failures >= limit {
            return Decision::Stop;
        }
        let jitter = self.full_jitter(failures, unit);
        let hint = hint.map(|h| h.min(MAX_HINT)).unwrap_or_default();
        Decision::RetryAfter(jitter.max(hint))
    }

    /// `random(0, min(cap, base * 2^attempt))`: AWS's full jitter.
    pub(crate) fn full_jitter(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.cap);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    #[test]
    fn decision_table() {
        let p = RetryPolicy { max_attempts: 3, ..Default::default() };
        let ms = Duration::from_millis;
        let cases: &[(ErrorClass, u32, Option<Duration>, f64, Decision)] = &[
            (Missing, 1, None, 0.5, Decision::Stop),
            (BadRequest, 1, None, 0.5, Decision::Stop),
            (Fatal, 1, None, 0.5, Decision::AbortRun),
            (Fatal, 3, None, 0.5, Decision::AbortRun),
            (Transient, 1, None, 0.5, Decision::RetryAfter(ms(100))), // ceiling 200 ms
            (Transient, 2, None, 0.5, Decision::RetryAfter(ms(200))), // ceiling 400 ms
            (Transient, 3, None, 0.5, Decision::Stop),
            (Throttled, 1, None, 0.0, Decision::RetryAfter(ms(0))),
            (Throttled, 1, Some(ms(2000)), 0.5, Decision::RetryAfter(ms(2000))), // hint wins
            (Throttled, 2, Some(ms(10)), 0.5, Decision::RetryAfter(ms(200))),    // jitter wins
            (Throttled, 1, Some(Duration::from_secs(3600)), 0.5, Decision::RetryAfter(MAX_HINT)),
            (Throttled, 3, Some(ms(10)), 0.5, Decision::RetryAfter(ms(400))),
            (Throttled, 11, None, 0.5, Decision::RetryAfter(BACKOFF_CAP / 2)),
            (Throttled, 12, None, 0.5, Decision::Stop), // 3 attempts x 4
        ];
        for (class, attempt, hint, unit, want) in cases {
            assert_eq!(p.decide(*class, *attempt, *hint, *unit), *want, "{class:?} attempt {attempt} hint {hint:?}");
        }
    }

    #[test]
    fn jitter_is_capped_and_grows() {
        let p = RetryPolicy::default();
        assert_eq!(p.full_jitter(30, 0.999_999), BACKOFF_CAP.mul_f64(0.999_999));
        assert!(p.full_jitter(3, 0.99) > p.full_jitter(2, 0.99));
        assert_eq!(p.full_jitter(4, 0.0), Duration::ZERO);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let p = RetryPolicy { max_attempts: 1, ..Default::default() };
        assert_eq!(p.decide(Transient, 1, None, 0.5), Decision::Stop);
    }
}
