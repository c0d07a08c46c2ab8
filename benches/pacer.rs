//! The fixed-mode pacer on the machine's own clock: how late calls leave
//! past their slots, how many leave together per wake-up, and how often the
//! runtime's thread sleeps and wakes per release tick. The unit tests hold
//! the schedule's facts on a clock they drive; these figures depend on the
//! machine and its load, so they are measured here and asserted nowhere.
//!
//! ```sh
//! cargo bench --bench pacer                 # the figures, then criterion's time per call
//! cargo bench --bench pacer -- --quick      # the same, shorter
//! ```
//!
//! For each rate it prints: the run's time against its schedule's, the
//! lateness of calls past their slots (median, 99th percentile, most), the
//! calls per wake-up (calls leaving within a millisecond of each other are
//! one wake-up), and the runtime thread's voluntary context switches per
//! release tick (one with the kernel's tick timer, two with tokio's).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use vod_image_audit::run::rate::{release_tick, RateControl, RateMode, GUARD_WINDOW};

/// Callers waiting on the pacer at once, as `--concurrency 32` has.
const TASKS: usize = 32;

/// The rates measured: a typical quota, and two that make up late wake-ups.
const RATES: [u32; 3] = [100, 1_000, 5_000];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
}

/// The runtime thread's voluntary context switches so far (Linux), `None`
/// elsewhere.
fn voluntary_switches() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `n` calls from [`TASKS`] tasks through a fixed limiter at `q`/s
/// on a current-thread runtime (so its thread's switches are the
/// runtime's); returns when each left, in order, and the switches.
fn paced_run(rt: &tokio::runtime::Runtime, q: u32, n: usize) -> (Vec<Instant>, Option<u64>) {
    rt.block_on(async {
        let rc = Arc::new(RateControl::new(RateMode::Fixed, NonZeroU32::new(q), NonZeroU32::MIN));
        let times = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let before = voluntary_switches();
        let callers: Vec<_> = (0..TASKS)
            .map(|_| {
                let (rc, times) = (rc.clone(), times.clone());
                tokio::spawn(async move {
                    loop {
                        rc.until_ready(|| None).await;
                        let mut t = times.lock().expect("not poisoned");
                        if t.len() == n {
                            break;
                        }
                        t.push(Instant::now());
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("a caller ended");
        }
        let switches = before.zip(voluntary_switches()).map(|(b, a)| a - b);
        let mut times = times.lock().expect("not poisoned").clone();
        times.sort();
        (times, switches)
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Prints one rate's figures.
fn report(rt: &tokio::runtime::Runtime, q: u32) {
    let n = 2 * q as usize;
    let (times, switches) = paced_run(rt, q, n);
    let interval = GUARD_WINDOW / q;
    let tick = release_tick(NonZeroU32::new(q).expect("a rate"));
    let mut late: Vec<Duration> =
        times.iter().enumerate().map(|(i, t)| t.saturating_duration_since(times[0] + interval * i as u32)).collect();
    late.sort();
    let took = times[n - 1] - times[0];
    let schedule = interval * (n as u32 - 1);
    let wakeups = 1 + times.windows(2).filter(|w| w[1] - w[0] > Duration::from_millis(1)).count();
    let ticks = took.as_secs_f64() / tick.as_secs_f64();
    println!(
        "{q:>5}/s  {n:>6} calls  took {:>8.3} s (schedule {:>8.3} s)  late: median {:>9.3?}, p99 {:>9.3?}, most {:>9.3?}  \
         {:>5.1} calls/wake-up  {} switches/tick (tick {tick:?})",
        took.as_secs_f64(),
        schedule.as_secs_f64(),
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late[n - 1],
        n as f64 / wakeups as f64,
        switches.map_or("n/a".to_owned(), |s| format!("{:.2}", s as f64 / ticks)),
    );
}

fn pacer(c: &mut Criterion) {
    let rt = runtime();
    for q in RATES {
        report(&rt, q);
    }
    // Criterion's figure: the time per call of a paced run, the schedule's
    // 1.01/q plus what the late calls add.
    let mut group = c.benchmark_group("pacer");
    group.sample_size(10);
    for q in RATES {
        group.bench_function(format!("fixed {q}/s, time per call"), |b| {
            b.iter_custom(|calls| {
                let (times, _) = paced_run(&rt, q, calls.max(2) as usize);
                (times[times.len() - 1] - times[0]) / (times.len() as u32 - 1) * calls as u32
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pacer);
criterion_main!(benches);
