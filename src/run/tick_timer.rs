//! The pacer's release tick as a kernel timer of its own (Linux `timerfd`),
//! so that a paced run wakes once per tick instead of twice.
//!
//! tokio's timer wheel (1.x, `runtime/time/wheel`) keeps a deadline that
//! lies in a later 64 ms block of its clock on a coarser level, and wakes
//! the runtime at the start of that block to move it down a level, then
//! again at the deadline. A release tick is 50-200 ms ahead, so nearly every
//! tick cost two wake-ups of the runtime thread: seen with strace at
//! `--qps 100`, a sleep of ~170 ms ending with no event, then one of ~25 ms
//! to the tick. A `timerfd` is armed for the exact deadline and wakes the
//! runtime's `epoll_wait` once, when it expires.
//!
//! Never early: the timer is armed relative to an instant taken before
//! arming, and the wait goes on until the deadline has passed by
//! [`Instant`]'s clock (the same `CLOCK_MONOTONIC`). A wait cut short (its
//! future dropped while armed) leaves nothing behind: re-arming resets the
//! count of expirations, and a readiness left over from it reads nothing
//! and is waited past. Elsewhere than Linux, or if the timer cannot be made
//! (no file descriptors left), tokio's own sleep is used.

use std::time::Instant;

/// A timer for one waiter at a time (the pacer's, under its lock).
#[derive(Default)]
pub struct TickTimer {
    #[cfg(target_os = "linux")]
    fd: Option<linux::TimerFd>,
    /// The kernel timer could not be made or used: tokio's sleep from now on.
    #[cfg(target_os = "linux")]
    failed: bool,
}

impl TickTimer {
    /// Waits until `at` (at once if it has passed). Must be called on a
    /// tokio runtime with I/O enabled.
    pub async fn sleep_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if !self.failed {
            if self.fd.is_none() {
                match linux::TimerFd::new() {
                    Ok(fd) => self.fd = Some(fd),
                    Err(e) => {
                        tracing::debug!("no timerfd for the release tick ({e}); tokio's timer instead");
                        self.failed = true;
                    }
                }
            }
            if let Some(fd) = &self.fd {
                match fd.sleep_until(at).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::debug!("the release tick's timerfd failed ({e}); tokio's timer instead");
                        self.fd = None;
                        self.failed = true;
                    }
                }
            }
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    pub struct TimerFd(AsyncFd<OwnedFd>);

    impl TimerFd {
        pub fn new() -> io::Result<Self> {
            // SAFETY: plain system call; the descriptor it returns is owned
            // by the OwnedFd below and closed with it.
            let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: the OwnedFd is moved into the AsyncFd and owned by it:
            // its descriptor stays open and the same until both are dropped.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)?;
            Ok(TimerFd(fd))
        }

        /// Arms the timer `at - now` ahead (re-arming resets the count of
        /// earlier expirations), or disarms it.
        fn arm(&self, at: Instant) -> io::Result<bool> {
            let now = Instant::now();
            let Some(ahead) = at.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                return Ok(false);
            };
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: ahead.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                    tv_nsec: ahead.subsec_nanos().into(),
                },
            };
            // SAFETY: a valid timerfd and a valid itimerspec; no old value
            // is asked for.
            let r = unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(true)
        }

        pub async fn sleep_until(&self, at: Instant) -> io::Result<()> {
            while self.arm(at)? {
                let mut ready = self.0.readable().await?;
                let read = ready.try_io(|fd| {
                    let mut count = [0u8; 8];
                    // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                    let n = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
                    if n < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
                match read {
                    // Expired; the loop checks the deadline again (arm says
                    // false once it has passed). Unreadable until armed
                    // again: said now, or the next wait would begin with a
                    // read that finds nothing.
                    Ok(Ok(())) => ready.clear_ready(),
                    Ok(Err(e)) => return Err(e),
                    // A readiness left over from a wait cut short: nothing
                    // to read, so it was cleared; wait again.
                    Err(_would_block) => {}
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn never_wakes_before_the_deadline() {
        let mut timer = TickTimer::default();
        for ms in [0u64, 1, 7, 30, 120] {
            let at = Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
            assert!(now - at < Duration::from_millis(100), "woke {:?} late", now - at);
        }
        // A deadline in the past: at once.
        let t0 = Instant::now();
        timer.sleep_until(t0 - Duration::from_millis(5)).await;
        assert!(t0.elapsed() < Duration::from_millis(50));
    }

    fn voluntary_switches() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The point of it: a wait of a release tick (200 ms at `--qps 100`)
    /// puts the runtime thread to sleep once. With tokio's sleep it slept
    /// twice (the wheel's level change, then the deadline).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_tick_is_one_wake_up() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ticks = 5;
        let (woken, slept) = rt.block_on(async {
            let mut timer = TickTimer::default();
            // The timer made and the runtime warmed before counting.
            timer.sleep_until(Instant::now() + Duration::from_millis(1)).await;
            let before = voluntary_switches();
            let t0 = Instant::now();
            for k in 1..=ticks {
                timer.sleep_until(t0 + Duration::from_millis(200 * k)).await;
            }
            (voluntary_switches() - before, t0.elapsed())
        });
        assert!(slept >= Duration::from_millis(200 * ticks));
        assert!(woken <= ticks + 1, "{woken} wake-ups for {ticks} ticks");
    }

    /// A wait cut short (its future dropped while the timer is armed, as
    /// when a stop wins a select) must not make a later wait end early:
    /// the old expiration happens while nobody waits, and the next wait,
    /// for a later deadline, still lasts until that deadline.
    #[tokio::test]
    async fn a_wait_cut_short_does_not_end_the_next_one_early() {
        let mut timer = TickTimer::default();
        let cut = tokio::time::timeout(
            Duration::from_millis(5),
            timer.sleep_until(Instant::now() + Duration::from_millis(20)),
        )
        .await;
        assert!(cut.is_err(), "the first wait was cut short");
        // Let the abandoned deadline pass, unread.
        std::thread::sleep(Duration::from_millis(40));
        for _ in 0..3 {
            let at = Instant::now() + Duration::from_millis(60);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
    }
}
