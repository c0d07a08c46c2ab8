//! Everything that can refuse a run, checked before the run directory is
//! touched, so that a refused start leaves nothing behind: files the run
//! would replace, the earlier runs named by `--compare-with` and
//! `--retry-failed` (verified before use), then the service itself: the
//! endpoint's host, a first key, the caller's identity and the endpoint's
//! certificate.

use std::path::{Path, PathBuf};

use super::super::error::{CmdError, Exit};
use super::super::settings::{ApiTarget, RunSettings};
use crate::api::client::VodClient;
use crate::api::error::ErrorClass;
use crate::report::verify;
use crate::run::input::{IdList, InputSource};
use crate::rundir::manifest::Manifest;
use crate::rundir::{self, PreviousError};

/// The earlier runs this one builds on, each verified.
pub(super) struct Earlier {
    /// `--compare-with`: the run tonight is compared with.
    pub compare_with: Option<PathBuf>,
    /// `--retry-failed`: the run whose failed ids this one calls again.
    pub retry_of: Option<Manifest>,
}

/// The checks that need no network: paths, then the earlier runs.
pub(super) fn check_files_and_earlier_runs(settings: &RunSettings, ids: Option<&IdList>) -> Result<Earlier, CmdError> {
    if let InputSource::Path(input) = &settings.input {
        refuse_a_file_the_run_replaces("--input", input, &settings.out)?;
    }
    if let Some(metrics) = &settings.metrics_file {
        refuse_a_file_the_run_replaces("--metrics-file", metrics, &settings.out)?;
    }
    let id_column = ids.map_or_else(|| "image_id".to_owned(), |i| i.id_column.clone());
    let compare_with = match settings.compare_with.as_deref() {
        Some(arg) => earlier_to_compare(settings, arg, &id_column)?,
        None => None,
    };
    let retry_of = match &settings.retry_failed {
        Some(old) => Some(earlier_for_retry(old, &settings.out)?),
        None => None,
    };
    Ok(Earlier { compare_with, retry_of })
}

/// `--compare-with DIR` or `auto`: the earlier run of this input, verified.
fn earlier_to_compare(settings: &RunSettings, arg: &str, id_column: &str) -> Result<Option<PathBuf>, CmdError> {
    let input_name = settings.input.display();
    let key = rundir::InputKey { path: &input_name, id_column };
    let check = |dir: &Path| verify::earlier_run(dir, &[rundir::IMAGES_CSV], true).map(drop).map_err(|e| e.to_string());
    let found = rundir::find_previous(arg, &settings.out, &key, &check).map_err(|e| match e {
        PreviousError::NotComparable(_) => CmdError::usage(e),
        PreviousError::NotVerified(_) => CmdError::new(Exit::VerifyFailed, e),
    })?;
    // Loud whatever --quiet says: a run passed over may be evidence edited.
    for (dir, why) in &found.passed_over {
        eprintln!("vod-image-audit: --compare-with auto: passing over {}: {why}", dir.display());
    }
    match (&found.dir, arg) {
        _ if settings.quiet => {}
        (Some(dir), "auto") => eprintln!("vod-image-audit: comparing with {}", dir.display()),
        (None, _) => eprintln!(
            "vod-image-audit: --compare-with auto: no earlier run of this input ({input_name}, column {id_column}) beside {}; nothing is compared",
            settings.out.display()
        ),
        _ => {}
    }
    Ok(found.dir)
}

/// The service, before the run directory exists: a configuration mistake
/// (a host that does not resolve, a key refused, a certificate not trusted)
/// is exit 2 with nothing written. Records the caller's identity in `target`.
pub(super) async fn connect(target: &mut ApiTarget) -> Result<VodClient, CmdError> {
    target.refuse_an_unresolvable_host().await?;
    let client = target.client()?;
    client.first_key().await.map_err(|e| target.no_key(&e))?;
    target.identity = match client.caller_identity().await {
        Ok(i) => Some(i),
        // The first connection over TLS: a certificate not trusted is a setting to fix.
        Err(e) if e.is_untrusted_certificate() => return Err(CmdError::usage(e)),
        // STS answered that the key itself is wrong: so would every VOD call.
        Err(e) if e.class == ErrorClass::Fatal && e.is_about_the_key() => {
            return Err(CmdError::usage(format!(
                "the key was refused ({}): {e}; nothing was called on VOD and nothing was written",
                target.credentials.source
            )));
        }
        Err(e) => {
            eprintln!(
                "vod-image-audit: GetCallerIdentity failed (the manifest will not name the account): {e}{}",
                e.connection_hint().map_or(String::new(), |h| format!("; {h}"))
            );
            None
        }
    };
    client.check_certificate(true).await.map_err(CmdError::usage)?;
    Ok(client)
}

/// A file named by `flag` (`--input`, `--metrics-file`) that is one of the
/// files the run writes or removes in `--out` (`--input out/images.csv`):
/// the run would replace the input, whose digest the manifest records, or
/// the metrics file would replace a report after the manifest sealed it.
/// Refused, whether or not `--force` (a resume replaces the reports too).
fn refuse_a_file_the_run_replaces(flag: &str, path: &Path, out: &Path) -> Result<(), CmdError> {
    let Ok(out_real) = std::fs::canonicalize(out) else { return Ok(()) };
    // The file itself when it exists (a link is followed), else its directory.
    let real = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    let Some(real) = real else { return Ok(()) };
    let replaced = real.parent() == Some(out_real.as_path())
        && real
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| rundir::REPORT_FILES.contains(&n) || rundir::STATE_FILES.contains(&n));
    if replaced {
        return Err(CmdError::usage(format!(
            "{flag} {} is {}, a file the run writes in --out {}: it would be replaced; choose a path outside --out",
            path.display(),
            real.display(),
            out.display()
        )));
    }
    Ok(())
}

/// `--retry-failed OLD`, before the run directory is touched: OLD is not the
/// directory being written, and its manifest and `images.jsonl` verify (the
/// records are copied into this run, which `verify` then vouches for).
fn earlier_for_retry(old: &Path, out: &Path) -> Result<Manifest, CmdError> {
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(old), std::fs::canonicalize(out)) {
        if a == b {
            return Err(CmdError::usage(format!(
                "--retry-failed {}: that is the --out being written; retry into a new --out",
                old.display()
            )));
        }
    }
    let m = Manifest::read(old)?;
    if !m.lists(rundir::IMAGES_JSONL) {
        return Err(CmdError::usage(format!(
            "--retry-failed {}: the run has no images.jsonl (it keeps the records exactly); retry a run made with --format json, the default",
            old.display()
        )));
    }
    verify::earlier_run(old, &[rundir::IMAGES_JSONL], false)
        .map_err(|e| CmdError::new(Exit::VerifyFailed, anyhow::anyhow!("--retry-failed {}: {e}", old.display())))
}
