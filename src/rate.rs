//! Rate control: the one limiter every call goes through, fixed at `--qps`
//! or adaptive (`--rate adaptive`), which finds an unknown quota.
//!
//! Owns the `governor` limiter and the adaptive policy. The policy
//! ([`Adaptive`]) is a pure state machine fed with timestamps, so it is
//! tested without a clock. It works on the whole run's send rate, not on a
//! single call: on `Throttling*` it drops to just under the rate the server
//! was accepting (never more than 10 % below the current rate's estimate of
//! the quota), climbs back quickly to 97 % of that, then probes upwards by
//! 1 % of it per second. Honouring server hints is `audit`'s pause.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// How the send rate is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateMode {
    /// Exactly `--qps`.
    Fixed,
    /// Start at `--qps`, slow down on throttling, speed up on success.
    Adaptive,
}

/// Lowest adaptive rate, calls per second.
pub const MIN_RATE: f64 = 0.5;
/// After a throttle, the rate is this share of the estimated quota.
pub const DECREASE_TO: f64 = 0.90;
/// Below this share of the estimate the rate climbs fast...
pub const FAST_UNTIL: f64 = 0.97;
/// ...by this share of the estimate per second...
pub const FAST_STEP: f64 = 0.05;
/// ...and above it probes slowly, by this share per second.
pub const PROBE_STEP: f64 = 0.01;
/// One decrease per this long: the throttles of one quota window are one signal.
pub const DECREASE_COOLDOWN: Duration = Duration::from_secs(1);
/// How long every call pauses after a throttle in adaptive mode, so the rest
/// of an exhausted quota window is not spent on calls bound to fail. Each
/// further throttle with no accepted call between doubles it, up to
/// [`MAX_THROTTLE_PAUSE`]: one quota window.
pub const THROTTLE_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause after throttles in a row.
pub const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// The adaptive policy: calls per second as a function of what the server
/// said and when.
#[derive(Debug, Clone)]
pub struct Adaptive {
    rate: f64,
    max: f64,
    /// The quota as estimated at the last throttle.
    estimate: Option<f64>,
    last_decrease: Option<Instant>,
    last_increase: Instant,
    accepted: VecDeque<Instant>,
    /// Throttles since the last accepted call.
    throttles_in_a_row: u32,
}

impl Adaptive {
    /// Starts at `start` calls per second, never going above it.
    pub fn new(start: f64, now: Instant) -> Self {
        Adaptive {
            rate: start,
            max: start,
            estimate: None,
            last_decrease: None,
            last_increase: now,
            accepted: VecDeque::new(),
            throttles_in_a_row: 0,
        }
    }

    /// The current rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn trim(&mut self, now: Instant) {
        while self.accepted.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1)) {
            self.accepted.pop_front();
        }
    }

    /// A call was answered without throttling. Returns the new rate if it changed.
    pub fn on_accepted(&mut self, now: Instant) -> Option<f64> {
        self.throttles_in_a_row = 0;
        self.accepted.push_back(now);
        self.trim(now);
        let est = self.estimate?;
        let dt = now.duration_since(self.last_increase).as_secs_f64();
        if dt < 0.1 {
            return None;
        }
        self.last_increase = now;
        let step = if self.rate < FAST_UNTIL * est { FAST_STEP } else { PROBE_STEP };
        let new = (self.rate + step * est * dt).min(self.max);
        (new != self.rate).then(|| {
            self.rate = new;
            new
        })
    }

    /// How long every call should wait after the latest throttle.
    pub fn pause(&self) -> Duration {
        let doublings = self.throttles_in_a_row.saturating_sub(1).min(10);
        THROTTLE_PAUSE.saturating_mul(1 << doublings).min(MAX_THROTTLE_PAUSE)
    }

    /// A call was throttled. Returns the new rate if it changed.
    pub fn on_throttled(&mut self, now: Instant) -> Option<f64> {
        self.throttles_in_a_row = self.throttles_in_a_row.saturating_add(1);
        self.trim(now);
        if self.last_decrease.is_some_and(|t| now.duration_since(t) < DECREASE_COOLDOWN) {
            return None;
        }
        self.last_decrease = Some(now);
        self.last_increase = now;
        // What the server accepted over the last second is the best estimate
        // of the quota, unless we were sending slower than that anyway.
        let accepted = self.accepted.len() as f64;
        let est = if accepted >= 1.0 { accepted.min(self.rate) } else { self.rate * 0.5 };
        self.estimate = Some(est);
        self.rate = (DECREASE_TO * est).max(MIN_RATE);
        Some(self.rate)
    }
}

/// The limiter of a run: one `governor` limiter at `--qps` that every call
/// passes (the hard cap), and in adaptive mode a pacer in front of it that
/// spaces calls at the adaptive rate. A fair lock is held by the one call
/// waiting for its slot, in both modes: no call reserves a slot ahead of
/// time (a lower rate, or a pause, applies to the very next call), and the
/// calls queued behind it sleep instead of all waking at every slot.
pub struct RateControl {
    limiter: DefaultDirectRateLimiter,
    adaptive: Option<Mutex<Adaptive>>,
    /// When the last paced call left (adaptive mode); held by the one call
    /// waiting for its slot, in both modes.
    pacer: tokio::sync::Mutex<Option<Instant>>,
    /// The adaptive interval between calls, in nanoseconds.
    interval_ns: AtomicU64,
}

impl RateControl {
    /// A limiter at `qps`, fixed or adaptive.
    pub fn new(mode: RateMode, qps: NonZeroU32, burst: NonZeroU32) -> Self {
        let rate = f64::from(qps.get());
        RateControl {
            limiter: RateLimiter::direct(Quota::per_second(qps).allow_burst(burst)),
            adaptive: (mode == RateMode::Adaptive).then(|| Mutex::new(Adaptive::new(rate, Instant::now()))),
            pacer: tokio::sync::Mutex::new(None),
            interval_ns: AtomicU64::new(Duration::from_secs_f64(1.0 / rate).as_nanos() as u64),
        }
    }

    /// Waits for the next slot. `pause` says until when every call must wait
    /// (server hints, throttles); in adaptive mode it is re-read while waiting.
    pub async fn until_ready(&self, pause: impl Fn() -> Option<Instant>) {
        // One call at a time waits for its slot; the others queue on the
        // fair lock, asleep. Without it every call in flight would wake at
        // every slot to try the limiter, and all but one sleep again: at
        // --concurrency 16 that is 16 wake-ups per call sent.
        let mut last = self.pacer.lock().await;
        if self.adaptive.is_some() {
            loop {
                // Re-read every round: a rate change applies while waiting.
                let interval = Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed));
                let slot = last.map(|l| l + interval);
                let until = match (slot, pause()) {
                    (Some(a), Some(b)) => a.max(b),
                    (a, b) => a.or(b).unwrap_or_else(Instant::now),
                };
                if until <= Instant::now() {
                    break;
                }
                tokio::time::sleep_until(until.into()).await;
            }
            *last = Some(Instant::now());
        }
        self.limiter.until_ready().await;
    }

    fn set(&self, rate: f64) {
        let interval = Duration::from_secs_f64(1.0 / rate.max(MIN_RATE));
        self.interval_ns.store(interval.as_nanos() as u64, Ordering::Relaxed);
        tracing::debug!(rate, "adaptive send rate");
    }

    /// Tells the controller about an answer. Returns a pause for every call
    /// (adaptive mode, throttled).
    pub fn on_answer(&self, throttled: bool) -> Option<Duration> {
        let a = self.adaptive.as_ref()?;
        let now = Instant::now();
        let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if throttled { a.on_throttled(now) } else { a.on_accepted(now) };
        let pause = throttled.then(|| a.pause());
        drop(a);
        if let Some(rate) = changed {
            self.set(rate);
        }
        pause
    }

    /// The current adaptive rate, if adaptive.
    pub fn adaptive_rate(&self) -> Option<f64> {
        self.adaptive.as_ref().map(|a| a.lock().unwrap_or_else(|e| e.into_inner()).rate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the policy against a per-second window quota of `q`, sending
    /// at the policy's rate, and returns (accepted, throttled) calls.
    fn simulate(q: u32, start: f64, seconds: u32) -> (u64, u64, f64) {
        let t0 = Instant::now();
        let mut a = Adaptive::new(start, t0);
        let (mut ok, mut throttled) = (0u64, 0u64);
        let mut t = 0.0f64;
        let mut window = (0u64, 0u32);
        let mut paused_until = 0.0;
        while t < f64::from(seconds) {
            if t < paused_until {
                t = paused_until;
                continue;
            }
            let now = t0 + Duration::from_secs_f64(t);
            let w = t.floor() as u64;
            if window.0 != w {
                window = (w, 0);
            }
            if window.1 < q {
                window.1 += 1;
                ok += 1;
                a.on_accepted(now);
            } else {
                throttled += 1;
                a.on_throttled(now);
                paused_until = t + a.pause().as_secs_f64();
            }
            t += 1.0 / a.rate();
        }
        (ok, throttled, a.rate())
    }

    #[test]
    fn finds_an_unknown_quota_from_five_times_above() {
        let (ok, throttled, rate) = simulate(100, 500.0, 60);
        let utilisation = ok as f64 / (100.0 * 60.0);
        let share = throttled as f64 / (ok + throttled) as f64;
        assert!(utilisation >= 0.90, "utilisation {utilisation:.3}");
        assert!(share < 0.05, "throttled share {share:.3}");
        assert!(rate > 80.0 && rate < 110.0, "settled at {rate}");
    }

    #[test]
    fn never_exceeds_the_starting_rate_and_never_stops() {
        let t0 = Instant::now();
        let mut a = Adaptive::new(50.0, t0);
        for i in 0..100 {
            a.on_throttled(t0 + Duration::from_secs(i * 2));
        }
        assert!(a.rate() >= MIN_RATE);
        let mut a = Adaptive::new(50.0, t0);
        a.on_throttled(t0);
        for i in 1..10_000 {
            a.on_accepted(t0 + Duration::from_millis(i * 10));
        }
        assert!(a.rate() <= 50.0);
    }

    #[test]
    fn throttles_in_a_row_lengthen_the_pause_up_to_a_window() {
        let t0 = Instant::now();
        let mut a = Adaptive::new(100.0, t0);
        let pauses: Vec<u128> = (0..6)
            .map(|i| {
                a.on_throttled(t0 + Duration::from_millis(i));
                a.pause().as_millis()
            })
            .collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        a.on_accepted(t0 + Duration::from_millis(10));
        a.on_throttled(t0 + Duration::from_millis(20));
        assert_eq!(a.pause(), THROTTLE_PAUSE);
    }

    #[test]
    fn one_decrease_per_window() {
        let t0 = Instant::now();
        let mut a = Adaptive::new(100.0, t0);
        for i in 0..50 {
            a.on_accepted(t0 + Duration::from_millis(i * 10));
        }
        assert!(a.on_throttled(t0 + Duration::from_millis(500)).is_some());
        assert!(a.on_throttled(t0 + Duration::from_millis(600)).is_none());
        assert!(a.on_throttled(t0 + Duration::from_millis(1600)).is_some());
    }
}
