//! Seeded fault injection: latency, dropped connections ([`Dropped`]),
//! slow answers, 500s and 503s, the outage window, and answers naming an
//! image not asked about. Every decision is drawn from (seed, the call's
//! key, how many times that key was called), so a run sees the same faults
//! whatever the order of its calls, on any machine.

use std::time::Instant;

use super::catalog::{mix64, Catalog, CatalogImage};
use super::config::OutageFault;
use super::wire::{unavailable, Answer};
use super::Simulator;

/// Why a connection is closed without an answer (the drop fault).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl Simulator {
    /// Whether a call that is the `n`-th authenticated one (1-based) falls
    /// in the outage window.
    pub(super) fn in_outage(&self, o: &OutageFault, n: u64) -> bool {
        n > o.after_calls && self.outage_opened.get_or_init(Instant::now).elapsed() < o.lasting
    }

    /// A seeded uniform number for (call key, call number, purpose).
    pub(super) fn draw(&self, key: &str, call: u64, purpose: u64) -> f64 {
        // FNV-1a, not std's DefaultHasher: its algorithm may change between
        // Rust releases, and a seed must give the same faults everywhere.
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let x = mix64(self.config.seed ^ mix64(h ^ mix64(call.wrapping_add(purpose << 48))));
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Latency, dropped connections, slow answers, 500s and 503s, drawn from
/// (seed, the call's key, how many times that key was called).
pub(super) async fn inject_faults(sim: &Simulator, key: &str, call: u64) -> Result<Option<Answer>, Dropped> {
    let f = &sim.config.faults;
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    if sim.draw(key, call, 1) < f.drop {
        return Err(Dropped);
    }
    if sim.draw(key, call, 2) < f.slow {
        tokio::time::sleep(f.slow_delay).await;
    }
    let fault = sim.draw(key, call, 3);
    if fault < f.internal_error {
        return Ok(Some(Answer::error(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )));
    }
    if fault < f.internal_error + f.unavailable {
        return Ok(Some(unavailable()));
    }
    Ok(None)
}

/// Makes a batch answer name an id it should not, one of three ways chosen
/// by `how` (in `[0, 1)`): an entry listed twice; another image's data in
/// place of one asked for (or added, when none was found); an id not asked
/// among the missing. `pick` chooses the other image. False when the answer
/// is empty and nothing can be listed twice.
pub(super) fn misname(
    catalog: &Catalog,
    asked: &[&str],
    found: &mut Vec<CatalogImage>,
    missing: &mut Vec<String>,
    how: f64,
    pick: f64,
) -> bool {
    let foreign = catalog.other_than(asked, pick);
    match ((how * 3.0) as u32, foreign) {
        (1, Some((_, img))) => match found.last_mut() {
            Some(last) => *last = img.clone(),
            None => found.push(img.clone()),
        },
        (2, Some((id, _))) => missing.push(id.to_owned()),
        _ => {
            if let Some(first) = found.first().cloned() {
                found.push(first);
            } else if let Some(first) = missing.first().cloned() {
                missing.push(first);
            } else {
                return false;
            }
        }
    }
    true
}
