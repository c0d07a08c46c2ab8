//! Raw flags become validated settings in one step: [`RunSettings`] for
//! `run`, [`ApiTarget`] for every command that calls the API. Nothing after
//! this step sees a raw flag.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::SystemTime;

use super::cli::{ApiArgs, InventoryArgs, Qps, RunArgs};
use super::error::{CmdError, Exit};
use super::notify::NotifySettings;
use super::progress::ProgressMode;
use super::values::{parse_auth_timeout, parse_duration, parse_duration_or_zero};
use crate::api::client::{ClientConfig, VodClient, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use crate::api::credentials::{self, CredentialRequest, CredentialSource};
use crate::api::endpoints;
use crate::api::endpoints::Endpoint;
use crate::api::error::{ApiError, ErrorClass};
use crate::api::proxy::{choose_proxy, ProxyEnv};
use crate::api::sts::Identity;
use crate::report::pass::ReportSettings;
use crate::report::review::{self, ReviewLedger};
use crate::report::trend::DEFAULT_TREND_RUNS;
use crate::report::write::CsvStyle;
use crate::run::guard::{self, FailureLimit};
use crate::run::input::{parse_delimiter, InputSource, RejectLimit};
use crate::run::inventory::Filters;
use crate::run::lanes::Action;
use crate::run::rate::RateMode;
use crate::run::retry::RetryPolicy;
use crate::run::settings::AuditSettings;
use crate::rundir::manifest::ManifestSettings;
use crate::rundir::signature::SigningKey;

/// `--min-audit-status` when not given: nine in ten found images must carry
/// `AuditStatus`. The page the project was built from documents it on every
/// answer; the current SDK models no longer list it (see the README): a
/// share below this means the service stopped sending it, not that a few
/// images lack a verdict.
pub(crate) const DEFAULT_MIN_AUDIT_STATUS: f64 = 0.9;

/// `--fail-on unreviewed_blocked`: a blocked image without a decision in
/// the review ledger.
pub(crate) const UNREVIEWED_BLOCKED: &str = "unreviewed_blocked";

/// Validated settings of `run`.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub input: InputSource,
    pub id_column: Option<String>,
    /// `--delimiter`, `--max-rejected`, `--dry-run`.
    pub reading: InputSettings,
    /// `--compare-with`: `auto` or a run directory.
    pub compare_with: Option<String>,
    pub out: PathBuf,
    pub force: bool,
    pub audit: AuditSettings,
    pub reports: ReportSettings,
    /// `--retry-failed`: an earlier run whose failed ids this run audits.
    pub retry_failed: Option<PathBuf>,
    /// `--fail-on`: change kinds (and `failed`) that make the run exit 8.
    pub fail_on: Vec<String>,
    /// `--min-audit-status`: the share of found images that must carry
    /// `AuditStatus`.
    pub min_audit_status: f64,
    /// Runs on the page's trend chart, this one included.
    pub trend_runs: usize,
    pub progress: ProgressMode,
    pub quiet: bool,
    /// `--metrics-file`: where the metrics go at the end.
    pub metrics_file: Option<PathBuf>,
    /// `--json`: one JSON object on stdout at the end.
    pub json: bool,
    /// The command line, recorded in the manifest.
    pub argv: Vec<String>,
    /// `--reviews`, and the evidence and news of the run.
    pub compliance: ComplianceSettings,
}

/// The variable that names the signing key when `--sign-key` is not given.
pub(crate) const SIGN_KEY_VAR: &str = "VOD_IMAGE_AUDIT_SIGN_KEY";

/// What a compliance team adds to a nightly run: its review ledger and the
/// key that signs the evidence.
#[derive(Debug, Clone, Default)]
pub(crate) struct ComplianceSettings {
    /// `--reviews`: the ledger, read and checked before any call.
    pub reviews: Option<std::sync::Arc<ReviewLedger>>,
    /// `--sign-key` (or `VOD_IMAGE_AUDIT_SIGN_KEY`): loaded and checked
    /// before any call.
    pub sign_key: Option<std::sync::Arc<SigningKey>>,
    /// `--notify`, `--notify-on`, `--notify-secret-env`, `--notify-timeout`.
    pub notify: std::sync::Arc<NotifySettings>,
}

impl ComplianceSettings {
    /// Checks `--reviews`.
    pub(crate) fn from_args(a: &RunArgs) -> Result<Self, CmdError> {
        let reviews = match &a.reviews {
            Some(path) => Some(std::sync::Arc::new(review::read_ledger(path).map_err(CmdError::usage)?)),
            None => None,
        };
        let key_path = match &a.sign_key {
            Some(p) => Some(p.clone()),
            // A path need not be UTF-8: the variable is taken as it is.
            None => std::env::var_os(SIGN_KEY_VAR).filter(|v| !v.is_empty()).map(PathBuf::from),
        };
        let sign_key = match key_path {
            Some(p) => Some(std::sync::Arc::new(SigningKey::load(&p).map_err(CmdError::usage)?)),
            None => None,
        };
        let notify = NotifySettings::from_args(
            &a.notify,
            &a.notify_on,
            a.notify_secret_env.as_deref(),
            a.notify_timeout.as_deref(),
        )?;
        Ok(ComplianceSettings { reviews, sign_key, notify: std::sync::Arc::new(notify) })
    }
}

/// The filters of `--all-images` and `list-images`, checked.
pub(crate) fn inventory_filters(a: &InventoryArgs) -> Result<Filters, CmdError> {
    if let (Some(after), Some(before)) = (a.created_after, a.created_before) {
        if after >= before {
            return Err(CmdError::usage("--created-after must be before --created-before"));
        }
    }
    Ok(Filters { created_after: a.created_after, created_before: a.created_before, cate_id: a.cate_id })
}

impl RunSettings {
    /// Checks the flags of `run`.
    pub(crate) fn from_args(a: &RunArgs, argv: Vec<String>) -> Result<Self, CmdError> {
        if a.input.is_some() && a.inventory.any() {
            return Err(CmdError::usage(
                "--created-after, --created-before and --cate-id choose what --all-images lists; with --input, filter the CSV instead",
            ));
        }
        let qps = match a.qps {
            None => NonZeroU32::new(crate::run::settings::DEFAULT_QPS),
            Some(Qps::Limit(n)) => Some(n),
            Some(Qps::Unlimited) => None,
        };
        if qps.is_none() && a.rate == RateMode::Adaptive {
            return Err(CmdError::usage("--rate adaptive starts from a --qps: give one (not 0 / unlimited)"));
        }
        let concurrency = a.concurrency;
        if concurrency == 0 || concurrency > 1024 {
            return Err(CmdError::usage("--concurrency must be between 1 and 1024"));
        }
        let max_attempts = a.max_attempts;
        if max_attempts == 0 || max_attempts > 100 {
            return Err(CmdError::usage("--max-attempts must be between 1 and 100"));
        }
        let max_failures = match &a.max_failures {
            Some(t) => Some(FailureLimit::parse(t).map_err(|e| CmdError::usage(format!("--max-failures {e}")))?),
            None => None,
        };
        let down_after = match &a.down_after {
            Some(t) => parse_duration_or_zero("--down-after", t)?,
            None => guard::DEFAULT_DOWN_AFTER,
        };
        if a.format.is_empty() {
            return Err(CmdError::usage("--format needs csv, json or html, comma-separated"));
        }
        let out = match &a.out {
            Some(p) => p.clone(),
            None => PathBuf::from("reports").join(utc_stamp(SystemTime::now())),
        };
        if let Some(path) = &a.metrics_file {
            check_metrics_file(path)?;
        }
        Ok(RunSettings {
            input: match &a.input {
                Some(path) => InputSource::from_arg(path),
                None => InputSource::AllImages(inventory_filters(&a.inventory)?),
            },
            id_column: a.id_column.clone(),
            reading: InputSettings::from_args(a)?,
            compare_with: a.compare_with.clone(),
            out,
            force: a.force,
            audit: AuditSettings {
                api: a.operation,
                qps,
                rate_mode: a.rate,
                burst: NonZeroU32::new(crate::run::settings::DEFAULT_BURST).expect("constant is non-zero"),
                concurrency,
                retry: RetryPolicy { max_attempts, ..RetryPolicy::default() },
                max_failures,
                down_after,
                audit_source: a.audit_source,
                api_qps: a.api_qps.clone(),
            },
            reports: ReportSettings { formats: a.format.clone(), csv: CsvStyle { safe: a.csv_safe, bom: a.csv_bom } },
            retry_failed: a.retry_failed.clone(),
            fail_on: {
                for kind in &a.fail_on {
                    if kind != "failed"
                        && kind != UNREVIEWED_BLOCKED
                        && !crate::report::changes::CHANGE_KINDS.contains(&kind.as_str())
                    {
                        return Err(CmdError::usage(format!(
                            "--fail-on {kind:?}: not a change kind; use failed, unreviewed_blocked or any of {}",
                            crate::report::changes::CHANGE_KINDS.join(", ")
                        )));
                    }
                }
                a.fail_on.clone()
            },
            min_audit_status: match a.min_audit_status {
                Some(m) if (0.0..=1.0).contains(&m) => m,
                Some(_) => return Err(CmdError::usage("--min-audit-status is a share between 0 and 1, e.g. 0.9")),
                None => DEFAULT_MIN_AUDIT_STATUS,
            },
            trend_runs: a.trend_runs.unwrap_or(DEFAULT_TREND_RUNS),
            progress: a.progress,
            quiet: a.quiet,
            metrics_file: a.metrics_file.clone(),
            json: a.json,
            // The robots' tokens stay out of the manifest.
            argv: super::notify::mask_argv(argv),
            compliance: ComplianceSettings::from_args(a)?,
        })
    }

    /// The settings as the manifest records them.
    pub(crate) fn for_manifest(&self, client: &ClientConfig) -> ManifestSettings {
        let a = &self.audit;
        ManifestSettings {
            api: a.api.as_str().to_owned(),
            qps: a.qps.map_or(0, NonZeroU32::get),
            rate: a.rate_mode.as_str().to_owned(),
            burst: a.burst.get(),
            concurrency: a.concurrency,
            max_attempts: a.retry.max_attempts,
            max_failures: a.max_failures.map(|l| match l {
                FailureLimit::Count(n) => n.to_string(),
                FailureLimit::Percent(p) => format!("{p}%"),
            }),
            down_after_ms: a.down_after.as_millis(),
            timeout_ms: client.request_timeout.as_millis(),
            output_type: client.output_type.as_str().to_owned(),
            auth_timeout: client.auth_timeout,
            audit_source: a.audit_source.as_str().to_owned(),
            formats: self.reports.formats.iter().map(|f| f.as_str().to_owned()).collect(),
            api_qps: Action::ALL
                .iter()
                .map(|x| (x.as_str().to_owned(), a.rate_of(*x).map_or(0, NonZeroU32::get)))
                .collect(),
        }
    }
}

/// Validated settings of `run` about reading the input and what to do
/// with it (kept beside [`RunSettings`], which the demo builds by hand).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputSettings {
    /// `--delimiter`; `None`: sniffed from the header line.
    pub delimiter: Option<u8>,
    /// `--max-rejected`.
    pub max_rejected: RejectLimit,
    /// `--dry-run`: print the plan, call nothing, write nothing.
    pub dry_run: bool,
}

impl InputSettings {
    /// Checks `--delimiter`, `--max-rejected` and `--dry-run`.
    pub(crate) fn from_args(a: &RunArgs) -> Result<Self, CmdError> {
        Ok(InputSettings {
            delimiter: match &a.delimiter {
                Some(d) => Some(parse_delimiter(d).map_err(|e| CmdError::usage(format!("--delimiter {e}")))?),
                None => None,
            },
            max_rejected: match &a.max_rejected {
                Some(m) => RejectLimit::parse(m).map_err(|e| CmdError::usage(format!("--max-rejected {e}")))?,
                None => RejectLimit::DEFAULT,
            },
            dry_run: a.dry_run,
        })
    }
}

/// Where calls go and with which key: resolved before any call.
pub(crate) struct ApiTarget {
    pub credentials: CredentialSource,
    /// Who the key is, when `GetCallerIdentity` told (set by `run`).
    pub identity: Option<Identity>,
    pub region: String,
    pub client: ClientConfig,
}

impl ApiTarget {
    /// The client of this target (no call made yet).
    pub(crate) fn client(&self) -> Result<VodClient, CmdError> {
        VodClient::new(self.credentials.clone(), self.client.clone())
            .map_err(|e| CmdError::internal(anyhow::anyhow!("building the HTTP client: {e}")))
    }

    /// Refuses, with exit 2, an endpoint whose host does not resolve: a
    /// mistake in `--region` or `--endpoint`, not an outage to ride out, so
    /// every command that calls the service says it the same way and before
    /// it writes anything. Through a proxy the proxy resolves the name: this
    /// machine may not.
    pub(crate) async fn refuse_an_unresolvable_host(&self) -> Result<(), CmdError> {
        if self.client.proxy.is_none() {
            self.client.endpoint.resolve_host().await.map_err(CmdError::usage)?;
        }
        Ok(())
    }

    /// Why no first key could be had: exit 2 when no retry fixes it (the
    /// configuration), exit 4 when it may (the source did not answer).
    pub(crate) fn no_key(&self, e: &ApiError) -> CmdError {
        let exit = if e.class == ErrorClass::Fatal { Exit::Usage } else { Exit::Stopped };
        CmdError::new(exit, anyhow::anyhow!("no key from {}: {e}", self.credentials.source))
    }

    /// Resolves credentials, region, endpoint and client settings; prints
    /// the resolution's warnings (a credentials file others can read) once.
    pub(crate) fn resolve(a: &ApiArgs) -> Result<Self, CmdError> {
        let resolved = credentials::resolve_from_process(&CredentialRequest {
            profile: a.profile.clone(),
            region: a.region.clone(),
        })?;
        for warning in &resolved.warnings {
            eprintln!("vod-image-audit: warning: {warning}");
        }
        Self::with_credentials(a, resolved.credentials, resolved.region)
    }

    /// Builds the target with credentials already at hand.
    pub(crate) fn with_credentials(
        a: &ApiArgs,
        credentials: impl Into<CredentialSource>,
        region: String,
    ) -> Result<Self, CmdError> {
        let credentials = credentials.into();
        let vpc =
            a.vpc || credentials::is_true(credentials::process_var("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")?.as_deref());
        let endpoint = match &a.endpoint {
            Some(e) => Endpoint::parse(e)?,
            None => Endpoint::for_region(&region, vpc).map_err(CmdError::usage)?,
        };
        let timeout = match &a.timeout {
            Some(t) => parse_duration("--timeout", t)?,
            None => DEFAULT_REQUEST_TIMEOUT,
        };
        let auth_timeout = match &a.auth_timeout {
            Some(t) => Some(parse_auth_timeout(t)?),
            None => None,
        };
        let proxy = choose_proxy(&endpoint, &ProxyEnv::from_process()).map_err(CmdError::usage)?;
        let sts_endpoint = match credentials::process_var("VOD_IMAGE_AUDIT_STS_ENDPOINT")? {
            Some(e) => {
                Endpoint::parse(e.trim()).map_err(|e| CmdError::usage(format!("VOD_IMAGE_AUDIT_STS_ENDPOINT: {e}")))?
            }
            // The simulator serves STS too: no test ever reaches a real STS host.
            None if endpoint.is_loopback() => endpoint.clone(),
            None => {
                let region = credentials::process_var("ALIBABA_CLOUD_STS_REGION")?;
                let host = endpoints::sts_host(region.as_deref().map(str::trim), vpc);
                Endpoint::parse(&format!("https://{host}/"))?
            }
        };
        let metadata_endpoint = match credentials::process_var("VOD_IMAGE_AUDIT_METADATA_ENDPOINT")? {
            Some(e) => Endpoint::parse_metadata(e.trim())
                .map_err(|e| CmdError::usage(format!("VOD_IMAGE_AUDIT_METADATA_ENDPOINT: {e}")))?,
            None => Endpoint::parse_metadata(Endpoint::METADATA)?,
        };
        let extra_roots = match &a.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let client = ClientConfig {
            extra_roots,
            sts_endpoint,
            metadata_endpoint,
            endpoint,
            request_timeout: timeout,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.min(timeout),
            output_type: a.output_type,
            auth_timeout,
            proxy,
        };
        Ok(ApiTarget { credentials, identity: None, region, client })
    }
}

/// The largest `--ca-file`: the whole Mozilla bundle is about 220 KB.
pub(crate) const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// `--ca-file`: the PEM certificates to trust, read before any call.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, CmdError> {
    let what = |why: String| CmdError::usage(format!("--ca-file {}: {why}", path.display()));
    let (pem, _) = crate::rundir::files::read_small_file(path, MAX_CA_FILE_BYTES).map_err(|e| what(e.to_string()))?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| what(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(what(
            "holds no certificate; give the CA's certificate in PEM (a -----BEGIN CERTIFICATE----- block)".to_owned(),
        ));
    }
    Ok(certs)
}

/// `--metrics-file`: a file name in a directory that exists, checked
/// before any call so that a typo fails the start, not the end of a run.
fn check_metrics_file(path: &std::path::Path) -> Result<(), CmdError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if path.file_name().and_then(|n| n.to_str()).is_none() {
        return Err(CmdError::usage(format!("--metrics-file {}: needs a file name", path.display())));
    }
    if !dir.is_dir() {
        return Err(CmdError::usage(format!("--metrics-file {}: no directory {}", path.display(), dir.display())));
    }
    Ok(())
}

/// `20261128T035600Z`: sorts by time and is safe in any file system.
pub(crate) fn utc_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().replace(['-', ':'], "")
}
