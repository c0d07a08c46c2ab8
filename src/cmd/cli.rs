//! The command line as typed ([`Cli`]), before any checking.
//!
//! Owns flag names, help text and the exit-code table. Turning these raw
//! flags into validated settings is [`super::settings`]' job; nothing past that
//! step sees a raw flag.

use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use super::progress::ProgressMode;
use crate::api::client::OutputType;
use crate::report::pass::Format;
use crate::run::lanes::Action;
use crate::run::rate::RateMode;
use crate::run::settings::{ApiMode, AuditSource};

/// A flag whose value is one of a library enum's names.
/// `--api-qps ACTION=N`: one API's rate; 0 or "unlimited" is no limit.
pub fn parse_api_qps(text: &str) -> Result<(Action, Option<NonZeroU32>), String> {
    let (action, n) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give ACTION=N, ACTION one of {}", Action::NAMES.join(", ")))?;
    let action: Action = action.trim().parse()?;
    let rate = match parse_qps(n.trim())? {
        Qps::Limit(n) => Some(n),
        Qps::Unlimited => None,
    };
    Ok((action, rate))
}

/// `--qps` of `run`: calls per second, or no client-side limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qps {
    Limit(std::num::NonZeroU32),
    Unlimited,
}

fn parse_qps(s: &str) -> Result<Qps, String> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(Qps::Unlimited);
    }
    match s.parse::<u32>() {
        Ok(0) => Ok(Qps::Unlimited),
        Ok(n) => Ok(Qps::Limit(std::num::NonZeroU32::new(n).expect("not zero"))),
        Err(_) => Err(format!("{s:?} is not a number of calls per second (or 0 / unlimited)")),
    }
}

fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Debug,
{
    PossibleValuesParser::new(names).map(|name| name.parse::<T>().expect("every listed name parses"))
}

/// The exit codes, as documented in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    every unique id is found or missing
  1    internal error (a bug)
  2    usage, input or configuration error; no call was made
  3    finished, but some ids failed (see images.csv, failures_by_code)
  4    stopped early: a fatal API error (key, signature, permission, clock),
       the retry budget ran out (the service keeps failing), an outage or
       throttling without pause lasted --down-after, --max-failures, or a
       disk error (the journal or the reports could not be written); what
       could be written is marked incomplete; run again to resume
  5    another run holds the lock on the output directory
  6    (verify) a report file changed, the ledger does not balance, or
       manifest.json.sig is missing or bad
  8    finished, and something --fail-on names happened (e.g. newly_blocked)
  9    finished, but AuditStatus was missing from more found images than
       --min-audit-status allows: the blocked count cannot be trusted
  10   (--all-images, list-images) the inventory is not complete: one second
       holds more images than SearchMedia can list, or the listing's counts do
       not add up (see manifest.json inventory); a stopped listing resumes
  130  interrupted (SIGINT/SIGTERM); the report so far is written and marked
       incomplete; run the same command again to resume

Credentials come from the official default chain: ALIBABA_CLOUD_ACCESS_KEY_ID /
ALIBABA_CLOUD_ACCESS_KEY_SECRET (/ ALIBABA_CLOUD_SECURITY_TOKEN) or the legacy ALICLOUD_*
pair; OIDC (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
ALIBABA_CLOUD_OIDC_TOKEN_FILE); the aliyun CLI profile file ~/.aliyun/config.json; the
credentials file ~/.alibabacloud/credentials; the ECS instance RAM role
(ALIBABA_CLOUD_ECS_METADATA); ALIBABA_CLOUD_CREDENTIALS_URI. Temporary keys are renewed
before they expire. `check` names the source and the caller. No flag takes a secret.";

/// Audits images on Alibaba Cloud ApsaraVideo VOD: GetImageInfo for every id
/// of a CSV, at a fixed rate, into CSV and JSON reports.
#[derive(Debug, Parser)]
#[command(name = "vod-image-audit", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Say more on stderr: -v what the run does, -vv each retry and pause
    /// (RUST_LOG, when set, decides instead).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl Cli {
    /// Whether `--quiet` was given (only `run` has it).
    pub fn quiet(&self) -> bool {
        match &self.command {
            Command::Run(a) => a.quiet,
            Command::ListImages(a) => a.quiet,
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit every image id of a CSV and write the reports.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunArgs),
    /// Who the key is (GetCallerIdentity), then one signed GetImageInfo call, printed as JSON:
    /// checks credentials, region and endpoint (--dry-run: only say what would be used).
    #[command(after_help = EXIT_CODES_HELP)]
    Check(CheckArgs),
    #[cfg(feature = "simulator")]
    /// Serve the built-in VOD simulator (for trying a configuration without production).
    Simulate(SimulateArgs),
    #[cfg(feature = "simulator")]
    /// Run an audit of the bundled sample against the in-process simulator.
    Demo(DemoArgs),
    /// List every image of the account (SearchMedia, cut into queries small enough to page
    /// through completely) into a CSV; prints the count.
    #[command(after_help = EXIT_CODES_HELP)]
    ListImages(ListImagesArgs),
    /// Re-check a finished run directory: file digests against the manifest, the ledger's sums.
    #[command(
        after_help = "Exit codes: 0 everything checks; 6 a file changed, a sum does not balance, the run is incomplete, or manifest.json.sig is missing, does not verify or is by a key --allowed-signers does not list; 2 not a run directory."
    )]
    Verify(VerifyArgs),
    /// What changed between two runs (newly blocked, missing, ...), as changes.csv.
    Diff(DiffArgs),
    /// Remove old complete run directories: keep the N newest, the newest of each of the last D days,
    /// every incomplete or locked run, and the runs the kept ones compare with.
    #[command(
        after_help = "Exit codes: 0 done (each removal and each kept directory with its reason is printed); 2 usage error; 4 a directory could not be removed."
    )]
    Prune(PruneArgs),
}

impl Command {
    /// Whether the command serves connections (the simulator, the demo),
    /// and so wants a thread per core.
    pub fn serves(&self) -> bool {
        #[cfg(feature = "simulator")]
        if matches!(self, Command::Simulate(_) | Command::Demo(_)) {
            return true;
        }
        false
    }
}

/// `verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// The manifest's SHA-256 as kept elsewhere (the run prints it): proves the
    /// manifest, and through it every report, is the one the run wrote.
    #[arg(long, value_name = "HEX")]
    pub manifest_sha256: Option<String>,
    /// An OpenSSH allowed_signers file: manifest.json.sig must be a good signature, in the
    /// vod-image-audit namespace, by a key it lists (as `ssh-keygen -Y verify` checks).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Print the result as one JSON object on stdout (ok, checked, problems, exit_code) instead
    /// of the ok:/FAILED: lines.
    #[arg(long)]
    pub json: bool,
}

/// `diff`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The earlier run's directory.
    pub old: PathBuf,
    /// The later run's directory.
    pub new: PathBuf,
    /// Write changes.csv here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the counts as one JSON object on stdout; changes.csv is then written only with --out.
    #[arg(long)]
    pub json: bool,
}

/// `prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// The folder that holds the run directories (e.g. reports).
    pub dir: PathBuf,
    /// Keep the N newest complete runs, by the manifest's finished time (at least 1; give it,
    /// --keep-daily or both).
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Also keep the newest run of each of the last D days that have a run (UTC dates).
    #[arg(long, value_name = "D")]
    pub keep_daily: Option<usize>,
    /// Print what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout: each run with its action (kept, removed,
    /// would_remove, failed) and why.
    #[arg(long)]
    pub json: bool,
}

/// Where and how to call the API.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Region id (else ALIBABA_CLOUD_REGION_ID, the profile's region_id, cn-shanghai).
    #[arg(long, value_name = "ID")]
    pub region: Option<String>,
    /// Endpoint URL instead of the region's (a private endpoint, the simulator).
    /// Plain http:// only to loopback addresses.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Call the region's VPC endpoint, vod-vpc.<region>.aliyuncs.com (also: ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true).
    #[arg(long)]
    pub vpc: bool,
    /// aliyun CLI profile to use (else ALIBABA_CLOUD_PROFILE, else the file's current profile).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Time allowed for one call, e.g. 10s, 1500ms; a bare number is seconds (default 10s, the
    /// official SDKs' read timeout).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// OutputType: the kind of URL the answers carry.
    #[arg(long, value_parser = choice::<OutputType>(OutputType::NAMES), default_value = "cdn")]
    pub output_type: OutputType,
    /// AuthTimeout: validity of the returned URLs, whole seconds (e.g. 3600 or 1h).
    #[arg(long, value_name = "DURATION")]
    pub auth_timeout: Option<String>,
    /// Also trust the CA certificates of this PEM file (a company CA, a TLS-inspecting proxy's),
    /// on top of the bundled roots and the system's store (which SSL_CERT_FILE replaces).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Which images `--all-images` and `list-images` list.
#[derive(Debug, Clone, Default, Args)]
pub struct InventoryArgs {
    /// Only images created at or after TIME (UTC, e.g. 2024-01-31T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_utc_arg)]
    pub created_after: Option<i64>,
    /// Only images created before TIME (UTC); default: when the listing starts.
    #[arg(long, value_name = "TIME", value_parser = parse_utc_arg)]
    pub created_before: Option<i64>,
    /// Only images of this category (CateId).
    #[arg(long, value_name = "ID")]
    pub cate_id: Option<i64>,
}

impl InventoryArgs {
    /// Whether any filter is given.
    pub fn any(&self) -> bool {
        self.created_after.is_some() || self.created_before.is_some() || self.cate_id.is_some()
    }
}

fn parse_utc_arg(s: &str) -> Result<i64, String> {
    crate::api::search::parse_utc(s).ok_or_else(|| format!("{s:?} is not a UTC time like 2024-01-31T00:00:00Z"))
}

/// `list-images`.
#[derive(Debug, Clone, Args)]
pub struct ListImagesArgs {
    /// The CSV to write (image_id, creation_time, status, cate_id, title, ...). A listing that
    /// stops resumes from FILE.listing.jsonl beside it.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Calls per second (default 20); 0 or "unlimited": no client-side limit.
    #[arg(long, value_name = "N", value_parser = parse_qps)]
    pub qps: Option<Qps>,
    /// Pages asked at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Print the result as one JSON object on stdout (out, images, the range listed, the
    /// counts that prove it complete) instead of the number of images.
    #[arg(long)]
    pub json: bool,
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// CSV of image ids, or - for stdin.
    #[arg(long, value_name = "FILE|-", required_unless_present = "all_images", conflicts_with = "all_images")]
    pub input: Option<String>,
    /// Audit every image of the account instead of a CSV: list them first (SearchMedia; the
    /// listing is kept in the run directory as inventory.csv), then audit exactly those.
    #[arg(long)]
    pub all_images: bool,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Column holding the ids (else the first of ImageId/image_id/imageid, any case, else a single column).
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// Field delimiter of --input: , ; tab | (default: the one that splits the header line into the most
    /// fields, outside quotes; the comma on a tie).
    #[arg(long, value_name = "C")]
    pub delimiter: Option<String>,
    /// Refuse the input, before any call, when more data rows than this are not valid ids: a count, or a
    /// percentage of the data rows, blank rows aside (default 10%). Rows under the limit go to rejected.csv.
    #[arg(long, value_name = "N|P%")]
    pub max_rejected: Option<String>,
    /// Read and check the input, resolve the credentials and the endpoint, and print the plan:
    /// no call, nothing written.
    #[arg(long)]
    pub dry_run: bool,
    /// Report directory (default: reports/<UTC timestamp>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite a directory that holds a complete run.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub api: ApiArgs,
    /// GetImageInfo calls per second, retries included (default 20: a fifth of its ~100/s account quota,
    /// which production shares). The other APIs run at the same share of their own documented quotas
    /// (GetImageInfos 10/s, GetMediaAuditResult 20/s, SearchMedia 50/s) unless --api-qps names them.
    /// 0 or "unlimited": no client-side limit for any API, only for the simulator or a quota you do not share.
    #[arg(long, value_name = "N", value_parser = parse_qps)]
    pub qps: Option<Qps>,
    /// ACTION=N: the rate of one API (GetImageInfo, GetImageInfos, GetMediaAuditResult, SearchMedia);
    /// repeatable; N 0 is no limit. Calls to different APIs never wait for each other's limiter.
    #[arg(long, value_name = "ACTION=N", value_parser = parse_api_qps)]
    pub api_qps: Vec<(Action, Option<NonZeroU32>)>,
    /// Operation: single (GetImageInfo per id) or batch (GetImageInfos, 20 ids per call,
    /// GetImageInfo again for answers without AuditStatus). Single stays the default until a real
    /// account confirms the batch answer carries AuditStatus.
    #[arg(long = "api", value_parser = choice::<ApiMode>(ApiMode::NAMES), default_value = "single")]
    pub operation: ApiMode,
    /// Where the moderation verdict comes from: image-info (GetImageInfo's AuditStatus), media-audit
    /// (GetMediaAuditResult for every found image: its Suggestion and the labels that say why), or both
    /// (AuditStatus, and GetMediaAuditResult for images whose AuditStatus is Blocked or absent).
    #[arg(long, value_parser = choice::<AuditSource>(AuditSource::NAMES), default_value = "image-info")]
    pub audit_source: AuditSource,
    /// Send rate: fixed at --qps, or adaptive (start at --qps, slow down when throttled, speed up again).
    #[arg(long, value_parser = choice::<RateMode>(RateMode::NAMES), default_value = "fixed")]
    pub rate: RateMode,
    /// Calls in flight at most.
    #[arg(long, value_name = "N", default_value_t = crate::run::settings::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Attempts per id for transient failures (5xx, timeouts), first call included;
    /// throttled answers are retried up to 4x as often, with growing backoff.
    #[arg(long, value_name = "N", default_value_t = crate::run::retry::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// Stop the run when more than N ids, or more than P% of settled ids (judged after 1,000), have failed.
    #[arg(long, value_name = "N|P%")]
    pub max_failures: Option<String>,
    /// How long an outage (50 failed calls in a row, no success since: the run pauses and probes,
    /// spending no id's attempts), or throttling without pause (every answer a throttle), may last
    /// before the run stops, resumable (default 60s; 0s: at once).
    #[arg(long, value_name = "DURATION")]
    pub down_after: Option<String>,
    /// Compare with an earlier run: a run directory, or auto for the latest complete run beside --out.
    #[arg(long, value_name = "auto|DIR")]
    pub compare_with: Option<String>,
    /// Report formats, comma-separated: csv, json, html, xlsx.
    #[arg(long, value_delimiter = ',', value_parser = choice::<Format>(Format::NAMES), default_value = "csv,json,html")]
    pub format: Vec<Format>,
    /// Defuse CSV cells a spreadsheet would run as formulas (a leading =, +, -, @, tab or CR gets a ');
    /// images.jsonl keeps the raw values. On by default; --csv-safe=false writes values as they are.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub csv_safe: bool,
    /// Start each CSV file with a UTF-8 byte order mark, so that Excel reads CJK text right.
    #[arg(long)]
    pub csv_bom: bool,
    /// Audit again only the ids that failed (or were never called) in this earlier run of the same
    /// input, into a new --out that holds the whole report: the earlier run's answers plus the new ones.
    #[arg(long, value_name = "DIR")]
    pub retry_failed: Option<PathBuf>,
    /// Exit 8 (after the reports) when any of these happened: change kinds (newly_blocked,
    /// newly_missing, unblocked, reappeared, status_changed, category_changed, audit_status_appeared,
    /// new_image)
    /// or failed, or unreviewed_blocked (a blocked image with no decision in --reviews), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    pub fail_on: Vec<String>,
    /// The team's review ledger, a CSV of image_id, decision (confirmed, appealed, deleted,
    /// false_positive), reviewer, reviewed_at, note: the reports show each blocked image's decision,
    /// count those without one, and list the reviews that no longer apply.
    #[arg(long, value_name = "FILE")]
    pub reviews: Option<PathBuf>,
    /// Sign manifest.json with this unencrypted OpenSSH ed25519 private key (mode 600) into
    /// manifest.json.sig, which `ssh-keygen -Y verify -n vod-image-audit` and
    /// `verify --allowed-signers` check (also: VOD_IMAGE_AUDIT_SIGN_KEY names the file).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Send the run's news to a webhook (repeatable): FORMAT is json, dingtalk, feishu or slack, else
    /// the URL's host decides (oapi.dingtalk.com, open.feishu.cn / open.larksuite.com,
    /// hooks.slack.com; any other: json). https only (http to loopback).
    #[arg(long, value_name = "[FORMAT=]URL")]
    pub notify: Vec<String>,
    /// When to send: alert (what --fail-on names happened), problem (failed ids, a stop, exit 9 or
    /// 10), always; comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = choice::<super::values::NotifyOn>(super::values::NotifyOn::NAMES), default_value = "alert,problem")]
    pub notify_on: Vec<super::values::NotifyOn>,
    /// The variable that holds the DingTalk robot's signing secret ("signature" security setting).
    #[arg(long, value_name = "VAR")]
    pub notify_secret_env: Option<String>,
    /// Time for every delivery of a run, retries included (default 30s); a receiver that never
    /// answers delays the end of the run by this much at most.
    #[arg(long, value_name = "DURATION")]
    pub notify_timeout: Option<String>,
    /// Share of found images that must carry AuditStatus (0..1, default 0.9); below it the run
    /// exits 9 after writing the reports, since the blocked count cannot be trusted.
    #[arg(long, value_name = "SHARE")]
    pub min_audit_status: Option<f64>,
    /// Runs on summary.html's trend chart: this one and the complete runs before it beside --out (default 30; 0: none).
    #[arg(long, value_name = "N")]
    pub trend_runs: Option<usize>,
    /// Progress display on stderr: a bar on a terminal (auto), always, or never.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Silent on success; a run that failed ids, stopped or alerted still prints one line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the run's metrics here at the end, in the Prometheus text format, atomically (for the
    /// node_exporter textfile collector); also for a failed or stopped run, not for one refused before any call.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Print one JSON object on stdout at the end (totals, blocked, changes, the run directory and
    /// its files, the exit code, the manifest's SHA-256), and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where each setting came from (the command line, a variable, `--config`).
    #[arg(skip)]
    pub sources: super::values::Sources,
}

/// `check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The image id to look up.
    #[arg(long, value_name = "ID", required_unless_present = "dry_run")]
    pub image_id: Option<String>,
    /// Print the region, endpoint and credential source that would be used, and call nothing
    /// that needs no call to know (static keys: nothing at all).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout: what check prints anyway (accepted so
    /// that every command that prints a result takes --json).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Where each setting came from (the command line, a variable, `--config`).
    #[arg(skip)]
    pub sources: super::values::Sources,
}

/// `simulate`.
#[cfg(feature = "simulator")]
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Address to listen on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:9480")]
    pub listen: String,
    /// Serve https with this PEM certificate chain (with --tls-key), to try --ca-file or a
    /// company CA against the simulator.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Catalog file: {"images": [ImageInfo, ...]} in the API's shape.
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    pub catalog: Option<PathBuf>,
    /// Generate N images instead of reading a catalog.
    #[arg(long, value_name = "N")]
    pub generate: Option<usize>,
    /// Seed for the generated catalog and for fault decisions.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give N of the generated images the same CreationTime second (2024-06-15T12:34:56Z), as a bulk
    /// import does: a SearchMedia inventory must split it to stay within its 5,000-result paging window.
    #[arg(long, value_name = "N", requires = "generate", conflicts_with = "catalog")]
    pub burst_second: Option<usize>,
    /// Spread the burst second's images over K categories (1 to 6; 1 puts them all in one).
    #[arg(long, value_name = "K", default_value_t = crate::sim::catalog::DEFAULT_BURST_CATEGORIES, requires = "burst_second")]
    pub burst_categories: usize,
    /// Put M of the generated images, the burst second's included, in the hour that holds the burst
    /// second (and no other image in it).
    #[arg(long, value_name = "M", requires = "generate", conflicts_with = "catalog")]
    pub burst_hour: Option<usize>,
    /// Write the catalog to FILE and exit (to make a catalog to edit).
    #[arg(long, value_name = "FILE")]
    pub write_catalog: Option<PathBuf>,
    /// Also write the catalog's ids to FILE, one per line (an input for `run`, the path is printed),
    /// then go on serving (or exit, with --write-catalog).
    #[arg(long, value_name = "FILE")]
    pub write_ids: Option<PathBuf>,
    /// The account as it stands on night N: night 1 is the catalog; each later night blocks 3 images,
    /// lifts 2 blocks, deletes 2 and adds 3, the same ones every time, so a run each night shows changes.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub night: u32,
    /// Quota of each action in calls per second, every action in a window of its own (0, and the default: none);
    /// excess calls are throttled (see --throttle-style).
    #[arg(long, value_name = "N")]
    pub qps: Option<u32>,
    /// The quota of one action in calls per second, in place of --qps for it (0: none); ACTION is
    /// GetImageInfo, GetImageInfos, GetMediaAuditResult or SearchMedia. Repeatable.
    #[arg(long = "api-qps", value_name = "ACTION=N")]
    pub api_qps: Vec<String>,
    /// How a call over its quota is answered: throttling-user (400 Throttling.User, as documented)
    /// or forbidden-flowcontrol (403 Forbidden.FlowControl with x-acs-retry-after, the milliseconds
    /// left in the window).
    #[arg(long, value_parser = choice::<crate::sim::ThrottleStyle>(crate::sim::ThrottleStyle::NAMES), default_value = "throttling-user")]
    pub throttle_style: crate::sim::ThrottleStyle,
    /// Send x-acs-retry-after with this value on every throttled answer, in place of the
    /// milliseconds left in the window: a huge hint, 0, an empty or a non-numeric one.
    #[arg(long, value_name = "VALUE")]
    pub throttle_retry_after: Option<String>,
    /// Put AuditStatus in GetImageInfos answers (the current batch model leaves it out; so does the default).
    #[arg(long)]
    pub batch_includes_audit_status: bool,
    /// Leave AuditStatus out of every answer, GetImageInfo too (an account whose answers lack it).
    #[arg(long)]
    pub omit_audit_status: bool,
    /// Fault: refuse every GetMediaAuditResult with CODE (404 for InvalidApi.*, else 403), as for an
    /// account or region where moderation results cannot be had.
    #[arg(long, value_name = "CODE", num_args = 0..=1, default_missing_value = "InvalidApi.NotFound")]
    pub media_audit_refused: Option<String>,
    /// Share of ids a GetImageInfos answer leaves out of both lists (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub batch_forgets: f64,
    /// SearchMedia's quota in calls per second (the documented one is 50): --api-qps SearchMedia=N.
    #[arg(long, value_name = "N")]
    pub search_qps: Option<u32>,
    /// Fault: SearchMedia breaks CreationTime ties by a key drawn per request instead of by ImageId,
    /// so pages of one query may overlap and miss images.
    #[arg(long)]
    pub search_unstable_ties: bool,
    /// Send x-ratelimit-user TimeLeft hints with throttled answers.
    #[arg(long)]
    pub ratelimit_hints: bool,
    /// Share of calls answered 500 InternalError (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub error_rate: f64,
    /// Share of calls answered 503 ServiceUnavailable (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub unavailable_rate: f64,
    /// Share of 200 answers that name an image not asked about (0..1): GetImageInfo answers with
    /// another image's data; GetImageInfos lists an id twice, or one not asked.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub wrong_image_id_rate: f64,
    /// Share of connections closed without an answer (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub drop_rate: f64,
    /// Share of answers delayed by --slow-time (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub slow_rate: f64,
    /// Delay of a slow answer.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub slow_time: String,
    /// Latency added to every call.
    #[arg(long, default_value = "0ms", value_name = "DURATION")]
    pub latency: String,
    /// Open an outage after N authenticated calls: every call is answered 503 for --outage-for.
    #[arg(long, value_name = "N")]
    pub outage_after: Option<u64>,
    /// How long the outage of --outage-after lasts.
    #[arg(long, default_value = "10s", value_name = "DURATION", requires = "outage_after")]
    pub outage_for: String,
    /// Region the simulator answers for.
    #[arg(long, default_value = "cn-shanghai")]
    pub region: String,
    /// AccessKey ID the simulator accepts (a made-up one; never a real key).
    #[arg(long, default_value = crate::sim::DEFAULT_KEY_ID)]
    pub access_key_id: String,
    /// AccessKey secret the simulator accepts (a made-up one; never a real key).
    #[arg(long, default_value = crate::sim::DEFAULT_KEY_SECRET)]
    pub access_key_secret: String,
    /// Seconds to add to the simulator's clock (negative: behind), to see how a skewed clock is reported.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_name = "SECONDS")]
    pub clock_offset: i64,
    /// Treat the key as deleted after N authenticated calls (a key revoked mid-run).
    #[arg(long, value_name = "N")]
    pub revoke_key_after: Option<u64>,
    /// Make the key an STS key that needs this SecurityToken (made up).
    #[arg(long, value_name = "TOKEN")]
    pub sts_token: Option<String>,
    /// Lifetime of the keys the simulator's STS, metadata service and credentials URI issue
    /// (at least 10s), to watch the tool renew them.
    #[arg(long, default_value = "3600s", value_name = "DURATION")]
    pub sts_duration: String,
    /// A RAM role (by name) that AssumeRole and AssumeRoleWithOIDC may assume; repeatable.
    #[arg(long = "role", value_name = "NAME")]
    pub roles: Vec<String>,
    /// The instance RAM role the metadata service (/latest/...) serves.
    #[arg(long, value_name = "NAME")]
    pub ecs_role: Option<String>,
    /// The OIDC provider ARN AssumeRoleWithOIDC accepts (with --oidc-token).
    #[arg(long, value_name = "ARN", requires = "oidc_token")]
    pub oidc_provider_arn: Option<String>,
    /// The OIDC token AssumeRoleWithOIDC accepts (made up).
    #[arg(long, value_name = "TOKEN", requires = "oidc_provider_arn")]
    pub oidc_token: Option<String>,
}

/// `demo`.
#[cfg(feature = "simulator")]
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the nights go: each night is a run directory DIR/night-N, and
    /// each `demo` adds the next night, compared with the one before.
    #[arg(long, value_name = "DIR", default_value = "reports/demo")]
    pub out: PathBuf,
    /// How many nights to run in one go, each after the last one in --out.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub nights: u32,
    /// Audit only the first N rows of the bundled sample, against a
    /// simulated account of just those images: a quicker demo (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sample: usize,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}
