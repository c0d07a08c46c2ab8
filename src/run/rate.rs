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
//!
//! Time is tokio's clock ([`now`]), which is the system's monotonic clock
//! unless a test pauses it: the tests drive the pacer's schedule on it,
//! exactly. How late it wakes and how many calls share a wake-up on a real
//! machine is `benches/pacer.rs`'s.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::tick_timer::TickTimer;

/// The time the pacer schedules with: tokio's clock, as a
/// [`std::time::Instant`] so that it compares with the pauses the caller
/// passes. It is the system's monotonic clock, except in a test that pauses
/// tokio's and moves it on.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// [`now`] as governor's clock, so that the hard cap and the pacer agree on
/// what time it is. Not governor's default clock (quanta), which calibrates
/// the CPU's time-stamp counter by reading the system clock in a loop at
/// start: a sixth of the samples of a profile at `--qps 100`.
#[derive(Debug, Clone, Copy, Default)]
struct PacerClock;

impl Clock for PacerClock {
    type Instant = Instant;

    fn now(&self) -> Instant {
        now()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, PacerClock, NoOpMiddleware<Instant>>;

/// Waits until the hard cap lets a call through, on the pacer's clock. (The
/// limiter's own `until_ready` sleeps on a timer thread of the system's
/// clock, which a test's clock does not move.) The pacer keeps within the
/// cap, so this does not wait unless the pacer is wrong.
async fn through_the_cap(limiter: &Limiter) {
    while let Err(not_until) = limiter.check() {
        tokio::time::sleep(not_until.wait_time_from(now())).await;
    }
}

named_enum! {
    /// How the send rate is chosen.
    pub enum RateMode {
        /// Exactly `--qps`.
        Fixed => "fixed",
        /// Start at `--qps`, slow down on throttling, speed up on success.
        Adaptive => "adaptive",
    }
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
    #[cfg(test)]
    fn rate(&self) -> f64 {
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

/// The longest stretch, in seconds, that holds at most `--qps` calls in
/// fixed mode (see [`RateControl`]): a second, plus 1 % for the time between
/// a call leaving the limiter and reaching the server, which varies.
pub const GUARD_WINDOW: Duration = Duration::from_millis(1010);

/// Above this `--qps` the fixed-mode window guard is not kept (it remembers
/// one send time per call of the window); governor's cap still holds.
pub const GUARD_MAX_QPS: u32 = 10_000;

/// Fixed mode releases the calls that are due together, on ticks about
/// this many calls apart ([`release_tick`]): they share one wake-up of the
/// pacer, of the connections' answers and of the journal thread, instead
/// of each paying for its own. At `--qps 100` on 2 cores, CPU per call was
/// 490 µs with no tick, 210 µs at 5 calls a tick (50 ms), 155 µs at 10 and
/// 125 µs at 20: about 100 µs a call plus 550 µs a wake-up. A call leaves
/// at most one tick after its slot on the schedule, never before it; the
/// schedule itself does not move, and no 1.01 s holds more than `--qps`.
pub const TICK_CALLS: u32 = 20;
/// The shortest tick: from 2,000 calls/s up a tick releases more than
/// [`TICK_CALLS`]. Short, because a run's last calls may leave up to a tick
/// late (the guard ties each to the tick of the call `--qps` before it);
/// at such rates 100 wake-ups a second are a small share of the calls.
pub const MIN_TICK: Duration = Duration::from_millis(10);
/// The longest tick: below 100 calls/s a tick releases fewer calls, so
/// that no call waits long past its slot.
pub const MAX_TICK: Duration = Duration::from_millis(200);

/// Seconds per call of the schedule at 1 call/s: [`GUARD_WINDOW`] in fixed
/// mode, 1 in adaptive mode (whose rate is its own estimate).
fn spacing(mode: RateMode) -> f64 {
    match mode {
        RateMode::Fixed => GUARD_WINDOW.as_secs_f64(),
        RateMode::Adaptive => 1.0,
    }
}

/// The release tick at `qps` calls/s: about [`TICK_CALLS`] calls' worth,
/// between [`MIN_TICK`] and [`MAX_TICK`], made a whole fraction of
/// [`GUARD_WINDOW`] (202 ms at 100/s, 20.2 ms at 1,000/s, 10 ms at
/// 5,000/s). Slots 1.01 s apart then fall at the same point of ticks 1.01 s
/// apart, so a call that leaves at its tick is never held back by the
/// guard for the call `--qps` before it, which left at its own tick.
pub fn release_tick(qps: NonZeroU32) -> Duration {
    let wanted = (Duration::from_secs(u64::from(TICK_CALLS)) / qps.get()).clamp(MIN_TICK, MAX_TICK);
    let window = GUARD_WINDOW.as_nanos();
    let near = (GUARD_WINDOW.as_secs_f64() / wanted.as_secs_f64()).round().max(1.0) as u128;
    // The whole number of ticks a window nearest that, which divides it to
    // the nanosecond (1.01 s = 2^7 x 5^7 x 101 ns: one is always close).
    let per_window =
        (0..near).flat_map(|d| [near - d, near + d]).find(|n| *n > 0 && window.is_multiple_of(*n)).unwrap_or(1);
    Duration::from_nanos((window / per_window) as u64)
}

/// How far behind its schedule, beyond the tick that was due, fixed mode may
/// fall and still make the late calls up (sending them at once) rather than
/// starting the schedule again from now. A tokio timer fires up to a millisecond late, a busy machine
/// later still: at 5,000 calls/s that is 5 calls or more a wake-up, lost
/// for good if the schedule restarted. Beyond this (idle, a pause) the
/// schedule restarts: no burst after a quiet spell.
pub const MAX_LAG: Duration = Duration::from_millis(100);

/// The limiter of a run: one `governor` limiter at `--qps` that every call
/// passes (the hard cap), and a pacer in front of it. A fair lock is held by
/// the one call waiting for its slot: no call reserves a slot ahead of time
/// (a lower rate, or a pause, applies to the very next call), and the calls
/// queued behind it sleep instead of all waking at every slot.
///
/// Fixed mode paces calls on a schedule, slot `k` at `start + k × 1.01/qps`
/// (the [`GUARD_WINDOW`]'s pace), and releases on each tick ([`release_tick`])
/// every call whose slot has come since the tick before (once the last calls
/// are known, each at its slot): a call leaves at most one tick after its slot, never
/// before it. A wake-up that comes late (timer granularity, a busy machine)
/// is made up: every call whose slot has passed leaves at once, up to
/// a tick and [`MAX_LAG`] behind; the schedule is not restarted, so the rate holds at
/// 1,000 or 5,000 calls/s with a 1 ms timer. So that making up never puts
/// more than `--qps` calls into one second of the server's, no call leaves
/// less than [`GUARD_WINDOW`] after the call `--qps` calls before it. The
/// waiting call sleeps on a [`TickTimer`]: one wake-up of the runtime a tick.
/// Adaptive mode spaces calls at the adaptive rate from when the last left.
/// Unlimited (`--qps 0`) only honours pauses.
pub struct RateControl {
    /// `None`: unlimited.
    limiter: Option<Limiter>,
    adaptive: Option<Mutex<Adaptive>>,
    /// Held by the one call waiting for its slot.
    pacer: tokio::sync::Mutex<Pacer>,
    /// The interval between calls, in nanoseconds: `1.01/qps` in fixed mode,
    /// the adaptive rate's in adaptive mode.
    interval_ns: AtomicU64,
    /// Fixed mode: how many send times the guard keeps.
    guard_len: usize,
    /// Fixed mode: ticks are counted from here...
    epoch: Instant,
    /// ...this far apart.
    tick: Duration,
    /// No call will follow the ones already started or waiting: a call
    /// leaves at its slot, not at the tick after it (a run's end is not
    /// stretched by up to a tick).
    last_calls: AtomicBool,
}

struct Pacer {
    /// Adaptive: when the last paced call left.
    last: Option<Instant>,
    /// Fixed: the next call's slot on the schedule.
    next_slot: Option<Instant>,
    /// Fixed: when the last `guard_len` calls left, oldest first.
    sent: VecDeque<Instant>,
    /// Fixed: what the waiting call sleeps on (one wake-up a tick).
    timer: TickTimer,
}

impl RateControl {
    /// A limiter at `qps` calls per second (`None`: unlimited), fixed or
    /// adaptive. governor's burst covers what one tick releases and what
    /// making up a late wake-up sends at once; the pacer keeps the spacing
    /// and the window guard the one-second count.
    pub fn new(mode: RateMode, qps: Option<NonZeroU32>, burst: NonZeroU32) -> Self {
        Self::with_timer(mode, qps, burst, TickTimer::default())
    }

    /// [`RateControl::new`], the waiting call sleeping on `timer`.
    fn with_timer(mode: RateMode, qps: Option<NonZeroU32>, burst: NonZeroU32, timer: TickTimer) -> Self {
        let pacer = tokio::sync::Mutex::new(Pacer { last: None, next_slot: None, sent: VecDeque::new(), timer });
        let Some(qps) = qps else {
            return RateControl {
                limiter: None,
                adaptive: None,
                pacer,
                interval_ns: AtomicU64::new(0),
                guard_len: 0,
                epoch: now(),
                tick: MIN_TICK,
                last_calls: AtomicBool::new(false),
            };
        };
        let rate = f64::from(qps.get());
        let tick = release_tick(qps);
        let made_up = (rate * (tick + MAX_LAG).as_secs_f64()).ceil() as u32;
        let burst = burst.saturating_add(1).max(NonZeroU32::new(made_up.saturating_add(1)).unwrap_or(NonZeroU32::MIN));
        RateControl {
            limiter: Some(RateLimiter::direct_with_clock(Quota::per_second(qps).allow_burst(burst), PacerClock)),
            adaptive: (mode == RateMode::Adaptive).then(|| Mutex::new(Adaptive::new(rate, now()))),
            pacer,
            // Fixed mode spaces its schedule GUARD_WINDOW/qps apart: the
            // rate the guard allows anyway. At 1/qps the guard, not the
            // tick, would hold every call back from the second second on,
            // each call on a timer of its own, and a run's last calls would
            // leave up to a tick late on top (2,000 calls at 100/s: +3.0 %
            // on N/Q).
            interval_ns: AtomicU64::new(Duration::from_secs_f64(spacing(mode) / rate).as_nanos() as u64),
            guard_len: if qps.get() <= GUARD_MAX_QPS { qps.get() as usize } else { 0 },
            epoch: now(),
            tick,
            last_calls: AtomicBool::new(false),
        }
    }

    /// Says that no call will follow the ones already started or waiting.
    pub fn last_calls(&self) {
        self.last_calls.store(true, Ordering::Relaxed);
    }

    /// The first tick at or after `t`.
    fn tick_at_or_after(&self, t: Instant) -> Instant {
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        let tick = self.tick.as_nanos();
        let ticks = since.div_ceil(tick);
        self.epoch + Duration::from_nanos((ticks * tick) as u64)
    }

    /// Waits for the next slot. `pause` says until when every call must wait
    /// (server hints, throttles); it is re-read while waiting.
    pub async fn until_ready(&self, pause: impl Fn() -> Option<Instant>) {
        let Some(limiter) = &self.limiter else {
            // Unlimited: only the pause.
            while let Some(until) = pause().filter(|u| *u > now()) {
                tokio::time::sleep_until(until.into()).await;
            }
            return;
        };
        // One call at a time waits for its slot; the others queue on the
        // fair lock, asleep. Without it every call in flight would wake at
        // every slot to try the limiter, and all but one sleep again: at
        // --concurrency 16 that is 16 wake-ups per call sent.
        let mut p = self.pacer.lock().await;
        if self.adaptive.is_some() {
            loop {
                // Re-read every round: a rate change applies while waiting.
                let interval = Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed));
                let slot = p.last.map(|l| l + interval);
                let until = match (slot, pause()) {
                    (Some(a), Some(b)) => a.max(b),
                    (a, b) => a.or(b).unwrap_or_else(now),
                };
                if until <= now() {
                    break;
                }
                tokio::time::sleep_until(until.into()).await;
            }
            p.last = Some(now());
            through_the_cap(limiter).await;
            return;
        }
        let interval = Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed));
        loop {
            let now = now();
            // Up to a tick and MAX_LAG behind, the schedule is kept (the
            // late calls are made up); further behind, it restarts from now.
            let mut slot = match p.next_slot {
                Some(slot) if slot + self.tick + MAX_LAG >= now => slot,
                _ => now,
            };
            // A pause moves the schedule to its end: what it held back is
            // not sent in a burst afterwards.
            if let Some(until) = pause().filter(|u| *u > slot) {
                slot = until;
            }
            // Due or overdue: now. Ahead: the first tick at or after the
            // slot, which also releases every later slot before it.
            let mut at =
                if slot <= now || self.last_calls.load(Ordering::Relaxed) { slot } else { self.tick_at_or_after(slot) };
            if self.guard_len > 0 && p.sent.len() >= self.guard_len {
                at = at.max(p.sent[0] + GUARD_WINDOW);
            }
            if at <= now {
                p.next_slot = Some(slot + interval);
                break;
            }
            p.timer.sleep_until(at).await;
        }
        through_the_cap(limiter).await;
        if self.guard_len > 0 {
            if p.sent.len() >= self.guard_len {
                p.sent.pop_front();
            }
            p.sent.push_back(now());
        }
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
        let now = now();
        let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if throttled { a.on_throttled(now) } else { a.on_accepted(now) };
        let pause = throttled.then(|| a.pause());
        drop(a);
        if let Some(rate) = changed {
            self.set(rate);
        }
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tokio's timer counts whole milliseconds of its clock, paused or not:
    /// a wait ends at the first whole millisecond at or after its deadline.
    const GRAIN: Duration = Duration::from_millis(1);

    /// A limiter whose waits follow tokio's clock, for a test that pauses it.
    fn on_tokio_time(mode: RateMode, qps: u32) -> RateControl {
        RateControl::with_timer(mode, NonZeroU32::new(qps), NonZeroU32::MIN, TickTimer::Tokio)
    }

    /// When the calls of a run left, in order, and the schedule they kept.
    struct Sent {
        times: Vec<Instant>,
        epoch: Instant,
        interval: Duration,
        tick: Duration,
    }

    impl Sent {
        /// Call `i`'s slot: the first leaves at once, the others one interval apart.
        fn slot(&self, i: usize) -> Instant {
            self.times[0] + self.interval * i as u32
        }
    }

    /// Sends `n` calls from `tasks` tasks through `rc`, each recording the
    /// time it left. If `jump` is `(k, d)`, the clock leaps `d` once the
    /// `k`-th call has left: the pacer, asleep for its next tick, wakes `d`
    /// late, as on a busy machine.
    async fn send(rc: RateControl, n: usize, tasks: usize, jump: Option<(usize, Duration)>) -> Sent {
        let rc = std::sync::Arc::new(rc);
        let left = std::sync::Arc::new(AtomicU64::new(n as u64));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..tasks {
            let (rc, left, tx) = (rc.clone(), left.clone(), tx.clone());
            tokio::spawn(async move {
                loop {
                    rc.until_ready(|| None).await;
                    if left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1)).is_err() {
                        break;
                    }
                    tx.send(now()).unwrap();
                }
            });
        }
        drop(tx);
        let mut times = Vec::with_capacity(n);
        while let Some(t) = rx.recv().await {
            times.push(t);
            if let Some((_, d)) = jump.filter(|(k, _)| *k == times.len()) {
                tokio::time::advance(d).await;
            }
        }
        assert_eq!(times.len(), n);
        assert!(times.is_sorted(), "the calls are recorded in the order they left");
        Sent {
            times,
            epoch: rc.epoch,
            interval: Duration::from_nanos(rc.interval_ns.load(Ordering::Relaxed)),
            tick: rc.tick,
        }
    }

    /// No `q + 1` calls within the guard's window: what the server sees in
    /// any second is at most `--qps`, however the calls bunch up.
    fn assert_window(sent: &Sent, q: u32) {
        for w in sent.times.windows(q as usize + 1) {
            let span = w[q as usize] - w[0];
            assert!(span >= GUARD_WINDOW, "at {q}/s: {} calls within {span:?}", q + 1);
        }
    }

    /// Fixed mode on a clock the test drives, from 40 to 5,000 calls/s
    /// from many tasks: no call leaves before its slot, each leaves at a
    /// release tick (the due calls together: one wake-up a tick), so at
    /// most a tick after its slot, and no `q + 1` calls share a window.
    #[tokio::test(start_paused = true)]
    async fn fixed_mode_keeps_its_schedule_and_releases_due_calls_together() {
        assert_eq!(release_tick(NonZeroU32::new(100).unwrap()), GUARD_WINDOW / 5);
        assert_eq!(release_tick(NonZeroU32::new(5).unwrap()), GUARD_WINDOW / 5);
        assert_eq!(release_tick(NonZeroU32::new(5_000).unwrap()), GUARD_WINDOW / 101);
        for (q, tasks) in [(5u32, 4usize), (40, 8), (100, 32), (1_000, 32), (5_000, 64)] {
            let n = (q as usize * 5) / 2;
            let sent = send(on_tokio_time(RateMode::Fixed, q), n, tasks, None).await;
            assert_eq!(sent.times[0], sent.epoch, "at {q}/s the first call waited");
            for (i, left) in sent.times.iter().enumerate() {
                let slot = sent.slot(i);
                assert!(*left >= slot, "at {q}/s call {i} left {:?} before its slot", slot - *left);
                let late = *left - slot;
                assert!(late < sent.tick + GRAIN, "at {q}/s call {i} left {late:?} after its slot");
                let into_tick = (*left - sent.epoch).as_nanos() % sent.tick.as_nanos();
                assert!(into_tick < GRAIN.as_nanos(), "at {q}/s call {i} left {into_tick} ns after a tick");
            }
            assert_window(&sent, q);
            let mut wakeups = sent.times.clone();
            wakeups.dedup();
            let ticks = (sent.times[n - 1] - sent.epoch).as_nanos().div_ceil(sent.tick.as_nanos()) as usize;
            assert!(
                wakeups.len() <= ticks + 1,
                "at {q}/s {n} calls left at {} instants in {ticks} ticks",
                wakeups.len()
            );
        }
    }

    /// A wake-up that comes late (here 50 ms past the tick) is made up:
    /// every call whose slot has passed leaves at once, the schedule is
    /// kept, and the run ends on it, within a tick of its last slot. The
    /// calls made up together still never put `q + 1` into a window.
    #[tokio::test(start_paused = true)]
    async fn a_late_wake_up_is_made_up_and_the_run_ends_on_its_schedule() {
        for (q, tasks) in [(100u32, 16usize), (1_000, 32), (5_000, 64)] {
            let n = (q as usize * 5) / 2;
            let rc = on_tokio_time(RateMode::Fixed, q);
            let lag = rc.tick + Duration::from_millis(50);
            let sent = send(rc, n, tasks, Some((n / 5, lag))).await;
            for (i, left) in sent.times.iter().enumerate() {
                assert!(*left >= sent.slot(i), "at {q}/s call {i} left before its slot");
            }
            let last = sent.slot(n - 1);
            let end = sent.times[n - 1];
            assert!(end < last + sent.tick + GRAIN, "at {q}/s the run ended {:?} after its last slot", end - last);
            assert_window(&sent, q);
        }
    }

    /// Once the last calls are known, each leaves at its own slot rather
    /// than at the tick after it: a run's end is not stretched by a tick.
    #[tokio::test(start_paused = true)]
    async fn the_last_calls_leave_at_their_slots_not_at_a_tick() {
        let rc = on_tokio_time(RateMode::Fixed, 100);
        let interval = Duration::from_nanos(rc.interval_ns.load(Ordering::Relaxed));
        rc.until_ready(|| None).await;
        let first = now();
        rc.last_calls();
        for k in 1..4u32 {
            rc.until_ready(|| None).await;
            let (left, slot) = (now(), first + interval * k);
            assert!(left >= slot && left < slot + GRAIN, "call {k} left {:?} after its slot", left - slot);
        }
    }

    /// `--qps 0`: no limit, but a pause still holds every call.
    #[tokio::test(start_paused = true)]
    async fn unlimited_sends_at_once_but_honours_a_pause() {
        let rc = RateControl::with_timer(RateMode::Fixed, None, NonZeroU32::MIN, TickTimer::Tokio);
        let start = now();
        for _ in 0..100_000 {
            rc.until_ready(|| None).await;
        }
        assert_eq!(now(), start, "a call waited");
        let until = start + Duration::from_millis(50);
        rc.until_ready(|| Some(until)).await;
        assert_eq!(now(), until);
    }

    /// A pause in fixed mode moves the schedule: the calls it held back are
    /// not sent in a burst when it ends. The schedule starts again at the
    /// pause's end, so the k-th call after it leaves no earlier than k
    /// intervals after the end (at the tick that releases its slot); made
    /// up, all would leave at the end at once.
    #[tokio::test(start_paused = true)]
    async fn a_pause_is_not_made_up_afterwards() {
        let rc = on_tokio_time(RateMode::Fixed, 100);
        let interval = Duration::from_nanos(rc.interval_ns.load(Ordering::Relaxed));
        rc.until_ready(|| None).await;
        let until = now() + Duration::from_millis(80);
        for k in 0..6u32 {
            rc.until_ready(|| Some(until)).await;
            let (left, slot) = (now(), until + interval * k);
            assert!(left >= slot, "call {k} left {:?} before its slot", slot - left);
        }
    }

    /// Adaptive mode spaces calls at its rate from when the last one left.
    #[tokio::test(start_paused = true)]
    async fn adaptive_mode_spaces_calls_at_its_rate() {
        let rc = on_tokio_time(RateMode::Adaptive, 50);
        let mut left = Vec::new();
        for _ in 0..5 {
            rc.until_ready(|| None).await;
            left.push(now());
        }
        for w in left.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_millis(20));
        }
    }

    /// The tick divides the guard's window, so a call that leaves at its
    /// tick finds the call `--qps` before it 1.01 s (a whole number of
    /// ticks) earlier, at the same point of its own tick: the guard never
    /// holds it back past the tick. A tick that does not divide it (200 ms
    /// at 100/s, 50 ms from 400/s) lets the guard hold a share of every
    /// second's calls 10 ms past their tick: a wake-up more a tick, and a
    /// run's last calls a tick late (a 2 s run at 1,000 or 5,000/s takes
    /// 2.060 s against its schedule's 2.020).
    #[test]
    fn the_tick_divides_the_guard_window() {
        for q in [1u32, 5, 40, 99, 100, 101, 400, 1_000, 2_000, 5_000, 10_000, 1_000_000] {
            let tick = release_tick(NonZeroU32::new(q).unwrap());
            assert_eq!(GUARD_WINDOW.as_nanos() % tick.as_nanos(), 0, "at {q}/s the tick is {tick:?}");
            assert!(tick >= MIN_TICK && tick <= MAX_TICK + MAX_TICK / 20, "at {q}/s the tick is {tick:?}");
            let per_tick = f64::from(q) * tick.as_secs_f64();
            if (100..=400).contains(&q) {
                assert!((15.0..=25.0).contains(&per_tick), "at {q}/s {per_tick} calls a tick");
            }
        }
    }

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
