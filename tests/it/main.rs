//! The integration tests, as one test binary (linked once, not once per
//! file): the real binary against the in-process simulator, and the
//! simulator itself.
//!
//! `cargo test --test it` runs them all; `cargo test --test it reliability::`
//! one module.

mod bad_input;
mod common;
mod compliance;
mod config_env;
mod consistency;
mod credentials;
mod cron_env;
mod demo_nights;
mod evidence;
mod first_hour;
mod hostile_api;
mod hostile_disk;
mod hostile_input;
mod hostile_server;
mod input_plan;
mod inventory;
mod logging;
mod nightly;
mod nightly_loop;
mod notify;
mod ops;
mod per_api;
mod reliability;
mod review_ledger;
mod rows;
mod run_e2e;
mod settings_change;
mod signature;
mod sim_strict;
mod throttling;
mod tls_trust;
mod verdict;
mod workbook;
