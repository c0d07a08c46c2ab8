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
//! runtime's `epoll_wait` once, when it expires. `benches/pacer.rs` counts
//! the wake-ups.
//!
//! Never early: the timer is armed relative to an instant taken before
//! arming, and the wait goes on until the deadline has passed by
//! [`Instant`]'s clock (the same `CLOCK_MONOTONIC`). A wait cut short (its
//! future dropped while armed) leaves nothing behind: re-arming resets the
//! count of expirations, and a readiness left over from it reads nothing
//! and is waited past. Elsewhere than Linux, or if the timer cannot be made
//! (no file descriptors left), tokio's own sleep is used.
//!
//! The kernel timer runs on the system's clock, which a test cannot drive:
//! tests of the pacer choose [`TickTimer::Tokio`], whose sleep follows
//! tokio's clock (paused and advanced by the test).

use std::time::Instant;

/// A timer for one waiter at a time (the pacer's, under its lock).
pub(crate) enum TickTimer {
    /// The kernel timer, made at the first wait (it needs the runtime's
    /// I/O driver): one wake-up a tick.
    #[cfg(target_os = "linux")]
    Kernel(Option<linux::TimerFd>),
    /// tokio's sleep: where there is no kernel timer, once it has failed,
    /// and on a clock a test drives.
    Tokio,
}

impl Default for TickTimer {
    /// The kernel timer where there is one.
    fn default() -> Self {
        #[cfg(target_os = "linux")]
        return TickTimer::Kernel(None);
        #[cfg(not(target_os = "linux"))]
        return TickTimer::Tokio;
    }
}

impl TickTimer {
    /// Waits until `at` (at once if it has passed). Must be called on a
    /// tokio runtime with I/O enabled.
    pub(crate) async fn sleep_until(&mut self, at: Instant) {
        #[cfg(target_os = "linux")]
        if let TickTimer::Kernel(fd) = self {
            if fd.is_none() {
                match linux::TimerFd::new() {
                    Ok(made) => *fd = Some(made),
                    Err(e) => tracing::debug!("no timerfd for the release tick ({e}); tokio's timer instead"),
                }
            }
            if let Some(fd) = fd {
                match fd.sleep_until(at).await {
                    Ok(()) => return,
                    Err(e) => tracing::debug!("the release tick's timerfd failed ({e}); tokio's timer instead"),
                }
            }
            *self = TickTimer::Tokio;
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

    pub(crate) struct TimerFd(AsyncFd<OwnedFd>);

    /// For a test to wait on the kernel's own word that the timer expired.
    #[cfg(test)]
    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> std::os::fd::RawFd {
            self.0.as_raw_fd()
        }
    }

    impl TimerFd {
        pub(crate) fn new() -> io::Result<Self> {
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

        pub(crate) async fn sleep_until(&self, at: Instant) -> io::Result<()> {
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
    use futures::FutureExt;
    use std::time::Duration;

    /// The kernel timer on the system's clock: whatever the machine's load,
    /// a wait never ends before its deadline, and one whose deadline has
    /// passed ends at its first poll. How late it wakes is the bench's.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_kernel_timer_never_wakes_before_the_deadline() {
        let mut timer = TickTimer::default();
        for ms in [0u64, 1, 7, 30] {
            let at = Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
        assert!(matches!(timer, TickTimer::Kernel(Some(_))), "the kernel timer was used");
        let past = Instant::now() - Duration::from_millis(5);
        assert!(timer.sleep_until(past).now_or_never().is_some(), "a deadline passed is not waited for");
    }

    /// A wait cut short (its future dropped while the timer is armed, as
    /// when a stop wins a select) must not make a later wait end early:
    /// the old expiration happens while nobody waits, and the next wait,
    /// for a later deadline, still lasts until that deadline.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_wait_cut_short_does_not_end_the_next_one_early() {
        use std::os::fd::AsRawFd;
        let mut timer = TickTimer::default();
        // Polled once, so armed, then dropped.
        let cut = timer.sleep_until(Instant::now() + Duration::from_millis(20)).now_or_never();
        assert!(cut.is_none(), "the first wait was cut short");
        let TickTimer::Kernel(Some(fd)) = &timer else { panic!("the kernel timer was armed") };
        // The abandoned deadline passes, unread: the kernel says when.
        let mut ready = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let polled = unsafe { libc::poll(&mut ready, 1, 30_000) };
        assert_eq!(polled, 1, "the abandoned timer expired");
        for _ in 0..3 {
            let at = Instant::now() + Duration::from_millis(20);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
        }
    }

    /// tokio's timer, the pacer's in tests, on tokio's paused clock: it
    /// wakes exactly at the deadline.
    #[tokio::test(start_paused = true)]
    async fn the_tokio_timer_follows_a_driven_clock() {
        let mut timer = TickTimer::Tokio;
        let t0 = tokio::time::Instant::now();
        for ms in [1u64, 7, 202, 1010] {
            let at = t0.into_std() + Duration::from_millis(ms);
            timer.sleep_until(at).await;
            assert_eq!(tokio::time::Instant::now().into_std(), at);
        }
    }
}
