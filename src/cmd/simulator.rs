//! The simulator's commands: `simulate` serves the strict local VOD
//! endpoint; `demo` runs one in-process with a quota and some faults and
//! audits the bundled sample against it. Built with the `simulator` feature.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::audit::run_audit;
use super::cli::{ApiArgs, DemoArgs, SimulateArgs};
use super::error::{CmdError, CmdResult, Exit};
use super::settings::{ApiTarget, InputSettings, RunSettings};
use super::signals::{spawn_signal_listener, Phase};
use crate::api::client::OutputType;
use crate::api::credentials::Credentials;
use crate::api::secret::Secret;
use crate::report::pass::{Format, ReportSettings};
use crate::report::summary::Summary;
use crate::report::write::CsvStyle;
use crate::run::input::{self, InputSource, RejectLimit};
use crate::run::rate::RateMode;
use crate::run::retry::RetryPolicy;
use crate::run::settings::{ApiMode, AuditSettings};
use crate::run::stop::StopHandle;
use crate::rundir::SUMMARY_JSON;
use crate::sim::{self, Catalog, Faults, OutageFault, QuotaAction, SimConfig, SimKey, Simulator, ThrottleStyle};

/// The simulator `simulate A` serves: its catalog, quotas, keys and faults.
fn sim_config(a: &SimulateArgs) -> Result<SimConfig, CmdError> {
    let catalog = catalog_of(a)?;
    check_rates(a)?;
    let mut config = SimConfig::new(catalog);
    config.region = a.region.clone();
    config.keys = vec![SimKey {
        id: a.access_key_id.clone(),
        secret: a.access_key_secret.clone(),
        sts_token: a.sts_token.clone(),
    }];
    config.qps = a.qps.filter(|q| *q > 0);
    if let Some(q) = a.search_qps {
        config.api_qps.insert(QuotaAction::SearchMedia, Some(q).filter(|q| *q > 0));
    }
    for text in &a.api_qps {
        let (action, qps) = parse_api_qps(text).map_err(|e| CmdError::usage(format!("--api-qps {e}")))?;
        config.api_qps.insert(action, qps);
    }
    config.throttle_style = a.throttle_style;
    config.throttle_retry_after = a.throttle_retry_after.clone();
    config.search_unstable_ties = a.search_unstable_ties;
    config.ratelimit_hints = a.ratelimit_hints;
    config.seed = a.seed;
    config.clock_offset_secs = a.clock_offset;
    config.revoke_key_after = a.revoke_key_after;
    config.batch_omits_audit_status = !a.batch_includes_audit_status;
    config.omit_audit_status = a.omit_audit_status;
    config.media_audit_refused = a.media_audit_refused.clone();
    config.batch_forgets = a.batch_forgets;
    config.sts_duration = duration_flag("--sts-duration", &a.sts_duration)?;
    if config.sts_duration < sim::MIN_STS_DURATION {
        return Err(CmdError::usage("--sts-duration must be at least 10s"));
    }
    config.roles = a.roles.clone();
    config.ecs_role = a.ecs_role.clone();
    config.oidc = a.oidc_provider_arn.clone().zip(a.oidc_token.clone());
    config.faults = faults_of(a)?;
    Ok(config)
}

/// The catalog of `--catalog` or `--generate`, as it stands on `--night`.
fn catalog_of(a: &SimulateArgs) -> Result<Catalog, CmdError> {
    match (&a.catalog, a.generate) {
        (Some(path), _) if a.night == 1 => Catalog::load(path).map_err(CmdError::usage),
        (Some(path), _) => {
            let loaded = Catalog::load(path).map_err(CmdError::usage)?.to_file_value();
            let images = loaded.get("images").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
            Catalog::from_values(sim::night::apply(images, a.night, &a.region)).map_err(CmdError::usage)
        }
        (None, Some(n)) => {
            let burst = sim::catalog::Burst {
                second: a.burst_second.unwrap_or(0),
                categories: a.burst_categories,
                hour: a.burst_hour.unwrap_or(0),
            };
            burst.check(n).map_err(CmdError::usage)?;
            let images = sim::catalog::generate_iter_with(n, a.seed, &a.region, burst);
            match a.night {
                1 => Catalog::from_values(images),
                night => Catalog::from_values(sim::night::apply(images.collect(), night, &a.region)),
            }
            .map_err(CmdError::usage)
        }
        (None, None) => Err(CmdError::usage("give --catalog FILE or --generate N")),
    }
}

/// Every rate flag is a share of calls, in `[0, 1]`.
fn check_rates(a: &SimulateArgs) -> Result<(), CmdError> {
    for (flag, rate) in [
        ("--error-rate", a.error_rate),
        ("--unavailable-rate", a.unavailable_rate),
        ("--drop-rate", a.drop_rate),
        ("--slow-rate", a.slow_rate),
        ("--batch-forgets", a.batch_forgets),
        ("--wrong-image-id-rate", a.wrong_image_id_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(CmdError::usage(format!("{flag} must be between 0 and 1")));
        }
    }
    Ok(())
}

/// The injected faults of `simulate A` (its rates checked by [`check_rates`]).
fn faults_of(a: &SimulateArgs) -> Result<Faults, CmdError> {
    Ok(Faults {
        internal_error: a.error_rate,
        unavailable: a.unavailable_rate,
        drop: a.drop_rate,
        slow: a.slow_rate,
        slow_delay: duration_flag("--slow-time", &a.slow_time)?,
        latency: duration_flag("--latency", &a.latency)?,
        outage: match a.outage_after {
            Some(after_calls) => {
                Some(OutageFault { after_calls, lasting: duration_flag("--outage-for", &a.outage_for)? })
            }
            None => None,
        },
        wrong_image_id: a.wrong_image_id_rate,
    })
}

/// The duration a flag gives, or a usage error naming the flag.
fn duration_flag(flag: &str, text: &str) -> Result<Duration, CmdError> {
    super::values::duration_text(text).map_err(|e| CmdError::usage(format!("{flag}: {e}")))
}

/// `ACTION=N` of `--api-qps`: the action and its quota (`0`: none, as `--qps 0`).
fn parse_api_qps(text: &str) -> Result<(QuotaAction, Option<u32>), String> {
    let (action, n) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give ACTION=N, ACTION one of {}", QuotaAction::NAMES.join(", ")))?;
    let action: QuotaAction = action.trim().parse()?;
    let n: u32 = n.trim().parse().map_err(|_| format!("{text:?}: {n:?} is not a number of calls per second"))?;
    Ok((action, Some(n).filter(|n| *n > 0)))
}

/// `simulate`: serves until interrupted.
pub(crate) async fn simulate(a: &SimulateArgs) -> CmdResult {
    let config = sim_config(a)?;
    if write_files(a, &config.catalog)? {
        return Ok(Exit::Ok);
    }
    let tls = tls_of(a)?;
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .map_err(|e| CmdError::usage(format!("cannot listen on {}: {e}", a.listen)))?;
    let addr = listener.local_addr().map_err(CmdError::internal)?;
    let addr = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let sim = Simulator::new(config);
    print_serving(a, sim.config(), &addr);
    print_how_to_use(a, sim.config(), &addr);
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        Some(tls) => sim::serve_tls(listener, tls, sim.clone(), interrupted).await,
        None => sim::serve(listener, sim.clone(), interrupted).await,
    }
    Ok(Exit::Ok)
}

/// Writes `--write-ids` and `--write-catalog`; true when `simulate` is to
/// exit then (`--write-catalog`). Both files are written before either
/// exits or serves: --write-ids beside --write-catalog is an ids file for
/// that catalog.
fn write_files(a: &SimulateArgs, catalog: &Catalog) -> Result<bool, CmdError> {
    if let Some(path) = &a.write_ids {
        let mut text = String::from("ImageId\n");
        for id in catalog.ids() {
            text.push_str(id);
            text.push('\n');
        }
        std::fs::write(path, text).map_err(|e| CmdError::usage(format!("writing {}: {e}", path.display())))?;
        let line = format!("wrote {} ids to {}", catalog.len(), path.display());
        match a.write_catalog {
            Some(_) => eprintln!("vod-image-audit: {line}"),
            None => println!("{line}"),
        }
    }
    let Some(path) = &a.write_catalog else { return Ok(false) };
    let text = serde_json::to_string_pretty(&catalog.to_file_value()).map_err(CmdError::internal)?;
    std::fs::write(path, text + "\n").map_err(|e| CmdError::usage(format!("writing {}: {e}", path.display())))?;
    eprintln!("vod-image-audit: wrote {} images to {}", catalog.len(), path.display());
    Ok(true)
}

/// The TLS settings of `--tls-cert` and `--tls-key`; `None`: plain http.
fn tls_of(a: &SimulateArgs) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, CmdError> {
    let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) else { return Ok(None) };
    let read = |p: &Path| std::fs::read(p).map_err(|e| CmdError::usage(format!("reading {}: {e}", p.display())));
    let tls = sim::tls_config(&read(cert)?, &read(key)?)
        .map_err(|e| CmdError::usage(format!("--tls-cert {} --tls-key {}: {e}", cert.display(), key.display())))?;
    Ok(Some(tls))
}

/// What the simulator serves, on stdout: its address, account, quotas and
/// throttling, the stats page, the burst.
fn print_serving(a: &SimulateArgs, c: &SimConfig, addr: &str) {
    println!("VOD simulator listening on {addr}/ ({} images, region {})", c.catalog.len(), c.region);
    if a.night > 1 {
        println!(
            "night {}: since night 1, {} images blocked, {} unblocked, {} deleted and {} added each night",
            a.night,
            sim::night::BLOCKED_PER_NIGHT,
            sim::night::UNBLOCKED_PER_NIGHT,
            sim::night::DELETED_PER_NIGHT,
            sim::night::ADDED_PER_NIGHT
        );
    }
    let quota = |q: Option<u32>| q.map_or("none".to_owned(), |q| format!("{q} calls/s"));
    println!("quota: {} per action", quota(c.qps));
    for (action, q) in &c.api_qps {
        println!("{} quota: {}", action.as_str(), quota(*q));
    }
    if c.throttle_style != ThrottleStyle::ThrottlingUser || c.throttle_retry_after.is_some() {
        println!(
            "throttled answers: {}{}",
            c.throttle_style.as_str(),
            c.throttle_retry_after.as_ref().map_or(String::new(), |v| format!(", x-acs-retry-after: {v:?}"))
        );
    }
    println!("stats: {addr}/__sim/stats");
    if a.burst_second.is_some() || a.burst_hour.is_some() {
        println!(
            "burst: {} images created at {}, {} in its hour",
            a.burst_second.unwrap_or(0),
            sim::catalog::BURST_SECOND,
            a.burst_hour.unwrap_or(0).max(a.burst_second.unwrap_or(0))
        );
    }
}

/// How to point the tool at the simulator, on stdout: the key to export,
/// a `check` and a `run` to try, the STS roles and the instance role.
fn print_how_to_use(a: &SimulateArgs, c: &SimConfig, addr: &str) {
    println!("Point the tool at it (simulator-only credentials, not a real key):");
    println!("  export ALIBABA_CLOUD_ACCESS_KEY_ID={}", a.access_key_id);
    println!("  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", a.access_key_secret);
    if let Some(t) = &a.sts_token {
        println!("  export ALIBABA_CLOUD_SECURITY_TOKEN={t}");
    }
    if let Some(id) = c.catalog.ids().first() {
        println!("  vod-image-audit check --endpoint {addr}/ --image-id {id}");
    }
    match &a.write_ids {
        Some(path) => println!("  vod-image-audit run --endpoint {addr}/ --input {}", path.display()),
        None => println!(
            "  vod-image-audit run --endpoint {addr}/ --input ids.csv   # ids.csv: simulate --write-ids ids.csv"
        ),
    }
    if !c.roles.is_empty() || c.ecs_role.is_some() {
        println!(
            "STS (account {}, keys living {}) and the metadata service are served on the same port:",
            c.account_id,
            humantime::format_duration(c.sts_duration)
        );
        for r in &c.roles {
            println!("  role acs:ram::{}:role/{r}", c.account_id);
        }
        if let Some(r) = &c.ecs_role {
            println!(
                "  instance role {r}: export VOD_IMAGE_AUDIT_METADATA_ENDPOINT={addr}/ ALIBABA_CLOUD_ECS_METADATA={r}"
            );
        }
    }
}

/// The bundled demo catalog.
pub(crate) const DEMO_CATALOG: &str = include_str!("../../inputs/demo-catalog.json");
/// The bundled demo input.
pub(crate) const DEMO_IDS: &[u8] = include_bytes!("../../inputs/demo-image-ids.csv");
/// The region of the demo's simulated account.
const DEMO_REGION: &str = "cn-shanghai";

/// The name of night `n`'s run directory under `demo --out`.
pub(crate) fn night_dir_name(n: u32) -> String {
    format!("night-{n}")
}

/// Where the next demo night goes, read from the `night-N` directories
/// under `parent`: the night after the last one, or the last one again when
/// it never completed (an interrupted demo is finished, not skipped), and
/// the newest complete night before it to compare with. Anything else in
/// `parent` (the files of the earlier one-directory demo, other runs) is
/// left as it is.
pub(crate) fn plan_night(parent: &Path) -> (u32, Option<u32>) {
    let mut nights: Vec<(u32, bool)> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n: u32 = name.to_str()?.strip_prefix("night-")?.parse().ok().filter(|n| *n > 0)?;
            let complete = crate::rundir::manifest::Manifest::read(&e.path()).is_ok_and(|m| m.complete);
            Some((n, complete))
        })
        .collect();
    nights.sort_unstable();
    let next = match nights.last() {
        Some((n, false)) => *n,
        Some((n, true)) => n + 1,
        None => 1,
    };
    let previous = nights.iter().rev().find(|(n, complete)| *complete && *n < next).map(|(n, _)| *n);
    (next, previous)
}

/// The demo's account on night `night` and the ids audited that night:
/// the bundled sample (its first `sample` rows; 0: all), against the bundled
/// catalog (only the sample's images when a sample is asked for), changed
/// by `simulate --night`'s changes; the images uploaded since night 1 are
/// appended to the input, as the nightly list of a real account would hold.
pub(crate) fn night_account(night: u32, sample: usize) -> Result<(Vec<serde_json::Value>, Vec<u8>), CmdError> {
    let values: serde_json::Value = serde_json::from_str(DEMO_CATALOG).map_err(CmdError::internal)?;
    let mut images = values.get("images").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let id_of = |v: &serde_json::Value| v.get("ImageId").and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
    let text = std::str::from_utf8(DEMO_IDS).map_err(CmdError::internal)?;
    let mut input = String::new();
    for (i, line) in text.lines().enumerate() {
        if sample > 0 && i > sample {
            break;
        }
        input.push_str(line);
        input.push('\n');
    }
    if sample > 0 {
        let sampled: std::collections::HashSet<&str> =
            input.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
        images.retain(|v| sampled.contains(id_of(v).as_str()));
    }
    let before: std::collections::HashSet<String> = images.iter().map(id_of).collect();
    let images = sim::night::apply(images, night, DEMO_REGION);
    for id in images.iter().map(id_of).filter(|id| !before.contains(id)) {
        input.push_str(&format!("{id},uploaded\n"));
    }
    Ok((images, input.into_bytes()))
}

/// `demo`: the simulator in-process with a quota and some faults, an audit
/// of the bundled sample against it, and the summary; `--nights N` nights
/// of it, each in its own directory under `--out` and compared with the
/// night before.
pub(crate) async fn demo(a: &DemoArgs, argv: Vec<String>) -> CmdResult {
    if a.out.join(crate::rundir::MANIFEST_JSON).exists() {
        println!(
            "demo: {} holds a run of the earlier one-directory demo; its files are left as they are, and the nights go beside them in {}/night-N",
            a.out.display(),
            a.out.display()
        );
    }
    let mut code = Exit::Ok;
    for _ in 0..a.nights {
        code = demo_night(a, argv.clone()).await?;
        if code == Exit::Interrupted {
            break;
        }
    }
    Ok(code)
}

/// One night of the demo: the next one under `--out`.
async fn demo_night(a: &DemoArgs, argv: Vec<String>) -> CmdResult {
    let (night, previous) = plan_night(&a.out);
    let out = a.out.join(night_dir_name(night));
    let (images, input_bytes) = night_account(night, a.sample)?;
    let config = demo_sim_config(images)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(CmdError::internal)?;
    let addr = listener.local_addr().map_err(CmdError::internal)?;
    let sim = Simulator::new(config);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(sim::serve(listener, sim.clone(), shutdown.clone().cancelled_owned()));

    let ids = input::read_ids(&input_bytes[..], "inputs/demo-image-ids.csv", None)?;
    let target = demo_target(addr)?;
    let compare_with = previous.map(|n| a.out.join(night_dir_name(n)).display().to_string());
    let settings = demo_settings(a, out, compare_with, argv);
    print_demo_intro(&settings.out, night, previous, addr, sim.config().catalog.len());
    let stop = StopHandle::default();
    let phase = Phase::default();
    spawn_signal_listener(stop.clone(), phase.clone());
    let code = run_audit(&settings, Some(ids), target, stop.clone(), phase).await?;
    shutdown.cancel();
    let _ = server.await;
    let stats = sim.stats();
    print_demo_summary(&settings.out, &stats, night, previous)
        .map_err(|e| CmdError::disk("reading the demo's summary.json", e))?;
    Ok(code)
}

/// The demo's simulator: `images`, a quota below the client's rate so that
/// throttling shows, and a few faults to show the retries.
fn demo_sim_config(images: Vec<serde_json::Value>) -> Result<SimConfig, CmdError> {
    let mut config = SimConfig::new(Catalog::from_values(images).map_err(|e| CmdError::internal(anyhow::anyhow!(e)))?);
    config.region = DEMO_REGION.into();
    config.qps = Some(200);
    config.ratelimit_hints = true;
    config.seed = 2026;
    config.faults = Faults {
        internal_error: 0.02,
        unavailable: 0.01,
        drop: 0.005,
        latency: Duration::from_millis(5),
        ..Faults::default()
    };
    Ok(config)
}

/// The demo simulator on `addr`, with its built-in key.
fn demo_target(addr: SocketAddr) -> Result<ApiTarget, CmdError> {
    let api = ApiArgs {
        region: None,
        endpoint: Some(format!("http://{addr}/")),
        vpc: false,
        profile: None,
        timeout: Some("5s".into()),
        output_type: OutputType::Cdn,
        auth_timeout: None,
        ca_file: None,
    };
    let credentials = Credentials {
        access_key_id: sim::DEFAULT_KEY_ID.into(),
        access_key_secret: Secret::new(sim::DEFAULT_KEY_SECRET),
        security_token: None,
        source: "the demo simulator's built-in key".into(),
        expires: None,
    };
    ApiTarget::with_credentials(&api, credentials, "cn-shanghai".into())
}

/// The run of one demo night: the bundled sample into `out`, compared with
/// `compare_with`, above the simulator's quota, every format but xlsx.
fn demo_settings(a: &DemoArgs, out: PathBuf, compare_with: Option<String>, argv: Vec<String>) -> RunSettings {
    RunSettings {
        input: InputSource::Path("inputs/demo-image-ids.csv".into()),
        id_column: None,
        reading: InputSettings { delimiter: None, max_rejected: RejectLimit::DEFAULT, dry_run: false },
        compare_with,
        out,
        force: true,
        audit: AuditSettings {
            api: ApiMode::Single,
            qps: NonZeroU32::new(240),
            rate_mode: RateMode::Fixed,
            burst: NonZeroU32::new(crate::run::settings::DEFAULT_BURST).expect("non-zero"),
            concurrency: 32,
            retry: RetryPolicy::default(),
            max_failures: None,
            down_after: crate::run::guard::DEFAULT_DOWN_AFTER,
            // The reason of each blocked image, and a verdict for those without AuditStatus.
            audit_source: crate::run::settings::AuditSource::Both,
            api_qps: Vec::new(),
        },
        reports: ReportSettings { formats: vec![Format::Csv, Format::Json, Format::Html], csv: CsvStyle::default() },
        trend_runs: crate::report::trend::DEFAULT_TREND_RUNS,
        min_audit_status: super::settings::DEFAULT_MIN_AUDIT_STATUS,
        fail_on: Vec::new(),
        retry_failed: None,
        progress: a.progress,
        quiet: false,
        metrics_file: None,
        json: false,
        compliance: Default::default(),
        argv,
    }
}

/// What the night is about to do, on stdout.
fn print_demo_intro(out: &Path, night: u32, previous: Option<u32>, addr: SocketAddr, images: usize) {
    match previous {
        Some(p) => println!("demo: night {night} in {}, compared with night {p}", out.display()),
        None => println!("demo: night {night} in {}", out.display()),
    }
    println!(
        "demo: simulator on http://{addr}/ with {images} images, a quota of 200 calls/s per action, 2% 500s, 1% 503s, 0.5% dropped connections"
    );
    println!("demo: auditing inputs/demo-image-ids.csv at 240 calls/s (above the quota, so throttling shows), asking GetMediaAuditResult why each blocked image is blocked");
}

/// The closing lines of a night: where its reports are, the table, and
/// what the next `demo` shows.
fn print_demo_summary(out: &Path, stats: &sim::Stats, night: u32, previous: Option<u32>) -> std::io::Result<()> {
    let summary: Summary = serde_json::from_slice(&std::fs::read(out.join(SUMMARY_JSON))?)?;
    println!();
    println!(
        "reports in {}/: summary.html images.csv images.jsonl summary.csv summary.json rejected.csv manifest.json",
        out.display()
    );
    println!(
        "open {}/summary.html in a browser; check the files with: vod-image-audit verify {}",
        out.display(),
        out.display()
    );
    println!();
    print_demo_table(&summary, stats);
    println!();
    print_demo_next(out, night, previous);
    Ok(())
}

/// The demo's table: the ledger, the verdicts, reasons, statuses and
/// categories of the images found, and the simulator's answers.
fn print_demo_table(summary: &Summary, stats: &sim::Stats) {
    let t = &summary.totals;
    let top = |label: &str, n: u64| println!("{}", table_row(label, 28, &[n]));
    let row = |label: &str, values: &[u64]| println!("  {}", table_row(label, 26, values));
    top("input rows", t.input_rows);
    top("  unique ids", t.unique_ids);
    top("  duplicates", t.duplicates);
    top("  rejected (rejected.csv)", t.invalid);
    top("found", t.found);
    top("missing (NoSuchResource)", t.missing);
    top("failed", t.failed);
    println!();
    println!("Verdict of found images (AuditStatus, else the moderation's Suggestion):");
    for (k, v) in &summary.by_verdict {
        row(k, &[*v]);
    }
    println!("AuditStatus as answered:");
    for (k, v) in &summary.by_audit_status {
        row(k, &[*v]);
    }
    println!("Reasons (GetMediaAuditResult):");
    for (k, v) in &summary.by_reason {
        row(k, &[*v]);
    }
    top("a person overrode the machine", summary.disagreement_count());
    println!("Status of found images:");
    for (k, v) in &summary.by_status {
        row(k, &[*v]);
    }
    println!("Categories (images / blocked):");
    for c in &summary.by_category {
        row(c.cate_name.as_deref().unwrap_or("(uncategorized)"), &[c.images, c.blocked]);
    }
    println!();
    println!("simulator answers by code:");
    for (k, v) in &stats.by_code {
        row(k, &[*v]);
    }
    let twice = stats.answers_by_image.values().filter(|n| **n > 1).count();
    println!("ids answered more than once: {twice}");
}

/// Where night `night`'s page is and what the next `demo` shows.
fn print_demo_next(out: &Path, night: u32, previous: Option<u32>) {
    let page = out.join(crate::rundir::SUMMARY_HTML);
    match previous {
        Some(p) => {
            println!(
                "night {night}: the changes since night {p} are in {} and on {}, with the trend of the nights",
                out.join(crate::rundir::CHANGES_CSV).display(),
                page.display()
            );
            println!("run `demo` again for night {}", night + 1);
        }
        None => {
            println!(
                "night {night}: open {}; run `demo` again for night {}: its page shows what changed and the trend",
                page.display(),
                night + 1
            )
        }
    }
}

/// One row of the demo's table: the label, with the characters that act on
/// a terminal escaped as everywhere else (a newline is `\u{a}`, never a raw
/// one nor a `\n` that reads like the two characters), padded to `width`
/// columns as a terminal shows them (CJK takes two), then each number in 8.
fn table_row(label: &str, width: usize, values: &[u64]) -> String {
    use unicode_width::UnicodeWidthStr;
    let label = crate::api::error::escape_for_terminal(label);
    let pad = width.saturating_sub(label.width());
    let mut line = format!("{label}{}", " ".repeat(pad));
    for v in values {
        line.push_str(&format!("{v:>8}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_align_cjk_and_escape_control_characters() {
        use unicode_width::UnicodeWidthStr;
        let rows = [
            table_row("News", 26, &[3, 1]),
            table_row("儿童节目", 26, &[3, 1]),
            table_row("ニュース速報", 26, &[3, 1]),
            table_row("Kids\nShows", 26, &[3, 1]),
            table_row("Kids\u{202e}Shows", 26, &[3, 1]),
        ];
        for r in &rows {
            assert_eq!(r.width(), 26 + 16, "{r:?}");
            assert!(r.ends_with("       3       1"), "{r:?}");
            assert!(!r.chars().any(|c| c.is_control() || c == '\u{202e}'), "{r:?}");
        }
        assert!(rows[3].starts_with("Kids\\u{a}Shows "), "{:?}", rows[3]);
    }

    /// Flags `simulate` reads itself, for where to serve and what to write:
    /// they say nothing about what the simulator is.
    const READ_BY_SIMULATE: &[&str] = &["listen", "tls_cert", "tls_key", "write_catalog", "write_ids"];

    /// The simulator's configuration (its catalog as the file format, the
    /// rest as `Debug` shows it) that `simulate ARGS` would serve.
    fn config_of(args: &[&str]) -> (String, serde_json::Value) {
        use clap::Parser;
        let cli = super::super::cli::Cli::try_parse_from(["vod-image-audit", "simulate"].iter().chain(args))
            .unwrap_or_else(|e| panic!("simulate {args:?}: {e}"));
        let super::super::cli::Command::Simulate(a) = cli.command else { panic!("not simulate") };
        let mut config = sim_config(&a).unwrap_or_else(|e| panic!("simulate {args:?}: {e}"));
        let catalog = config.catalog.to_file_value();
        // Two equal catalogs need not print alike: their maps iterate in an order of their own.
        config.catalog = Catalog::default();
        (format!("{config:?}"), catalog)
    }

    #[test]
    fn every_simulate_flag_changes_the_simulator_or_what_simulate_does() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.json");
        std::fs::write(&catalog, r#"{"images": [{"ImageId": "only-one"}]}"#).unwrap();
        let catalog = catalog.to_str().unwrap();
        const G: &[&str] = &["--generate", "10"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> { G.iter().chain(extra).copied().collect() };
        // (the flag's id, the arguments with it, the same without it).
        let rows: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
            ("catalog", vec!["--catalog", catalog], G.to_vec()),
            ("generate", vec!["--generate", "11"], G.to_vec()),
            ("seed", with(&["--seed", "2"]), G.to_vec()),
            ("burst_second", with(&["--burst-second", "4"]), G.to_vec()),
            (
                "burst_categories",
                with(&["--burst-second", "4", "--burst-categories", "1"]),
                with(&["--burst-second", "4"]),
            ),
            ("burst_hour", with(&["--burst-hour", "5"]), G.to_vec()),
            ("night", with(&["--night", "2"]), G.to_vec()),
            ("qps", with(&["--qps", "5"]), G.to_vec()),
            ("api_qps", with(&["--api-qps", "GetImageInfo=5"]), G.to_vec()),
            ("throttle_style", with(&["--throttle-style", "forbidden-flowcontrol"]), G.to_vec()),
            ("throttle_retry_after", with(&["--throttle-retry-after", "0"]), G.to_vec()),
            ("batch_includes_audit_status", with(&["--batch-includes-audit-status"]), G.to_vec()),
            ("omit_audit_status", with(&["--omit-audit-status"]), G.to_vec()),
            ("media_audit_refused", with(&["--media-audit-refused"]), G.to_vec()),
            ("batch_forgets", with(&["--batch-forgets", "0.5"]), G.to_vec()),
            ("search_qps", with(&["--search-qps", "5"]), G.to_vec()),
            ("search_unstable_ties", with(&["--search-unstable-ties"]), G.to_vec()),
            ("ratelimit_hints", with(&["--ratelimit-hints"]), G.to_vec()),
            ("error_rate", with(&["--error-rate", "0.5"]), G.to_vec()),
            ("unavailable_rate", with(&["--unavailable-rate", "0.5"]), G.to_vec()),
            ("wrong_image_id_rate", with(&["--wrong-image-id-rate", "0.5"]), G.to_vec()),
            ("drop_rate", with(&["--drop-rate", "0.5"]), G.to_vec()),
            ("slow_rate", with(&["--slow-rate", "0.5"]), G.to_vec()),
            ("slow_time", with(&["--slow-time", "1s"]), G.to_vec()),
            ("latency", with(&["--latency", "1ms"]), G.to_vec()),
            ("outage_after", with(&["--outage-after", "5"]), G.to_vec()),
            ("outage_for", with(&["--outage-after", "5", "--outage-for", "1s"]), with(&["--outage-after", "5"])),
            ("region", with(&["--region", "cn-beijing"]), G.to_vec()),
            ("access_key_id", with(&["--access-key-id", "OTHER-ID"]), G.to_vec()),
            ("access_key_secret", with(&["--access-key-secret", "other-secret"]), G.to_vec()),
            ("clock_offset", with(&["--clock-offset", "-5"]), G.to_vec()),
            ("revoke_key_after", with(&["--revoke-key-after", "5"]), G.to_vec()),
            ("sts_token", with(&["--sts-token", "T"]), G.to_vec()),
            ("sts_duration", with(&["--sts-duration", "60s"]), G.to_vec()),
            ("roles", with(&["--role", "auditor"]), G.to_vec()),
            ("ecs_role", with(&["--ecs-role", "auditor"]), G.to_vec()),
            // Each needs the other: with either one unread, no provider is configured.
            ("oidc_provider_arn", with(&["--oidc-provider-arn", "A", "--oidc-token", "T"]), G.to_vec()),
            ("oidc_token", with(&["--oidc-provider-arn", "A", "--oidc-token", "T"]), G.to_vec()),
        ];
        let cli = super::super::cli::Cli::command();
        let simulate = cli.find_subcommand("simulate").expect("simulate");
        let flags: Vec<&str> = simulate.get_arguments().map(|a| a.get_id().as_str()).collect();
        for flag in &flags {
            assert!(
                READ_BY_SIMULATE.contains(flag) || rows.iter().any(|(f, _, _)| f == flag),
                "simulate's flag {flag:?} has no row here: give it one that shows what it changes, or remove it"
            );
        }
        let mut unread = Vec::new();
        for (flag, on, off) in &rows {
            assert!(flags.contains(flag), "{flag:?} is not a flag of simulate");
            if config_of(on) == config_of(off) {
                unread.push(*flag);
            }
        }
        assert!(unread.is_empty(), "these flags configure the same simulator with or without them: {unread:?}");
    }

    #[test]
    fn api_qps_names_an_action_and_its_quota() {
        assert_eq!(parse_api_qps("GetMediaAuditResult=20"), Ok((QuotaAction::GetMediaAuditResult, Some(20))));
        assert_eq!(parse_api_qps(" SearchMedia = 50 "), Ok((QuotaAction::SearchMedia, Some(50))));
        assert_eq!(parse_api_qps("GetImageInfos=0"), Ok((QuotaAction::GetImageInfos, None)), "0: none, as --qps 0");
        for bad in ["GetImageInfo", "GetImage=5", "getimageinfo=5", "GetImageInfo=x", "GetImageInfo=-1", "=5"] {
            let e = parse_api_qps(bad).expect_err(bad);
            assert!(e.contains("GetImageInfo") || e.contains("calls per second"), "{bad}: {e}");
        }
    }
}
