//! `list-images`, and the listing phase of `run --all-images`: the
//! account's images through `SearchMedia` ([`crate::run::inventory`]),
//! with the run's limiter, retries and stop switch, and what is printed
//! and which exit code a listing that cannot be completed ends with.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use super::cli::{ListImagesArgs, Qps};
use super::error::{CmdError, CmdResult, Exit};
use super::settings::{inventory_filters, ApiTarget};
use crate::api::client::VodClient;
use crate::api::search::SEARCH_MEDIA_QPS;
use crate::run::call::{Caller, Shared};
use crate::run::counters::Counters;
use crate::run::inventory::{self, EveryFewSeconds, ListError, Listing};
use crate::run::lanes::Action;
use crate::run::rate::RateMode;
use crate::run::retry::RetryPolicy;
use crate::run::settings::{ApiMode, AuditSettings, AuditSource};
use crate::run::stop::{StopHandle, StopReason};

use crate::rundir::files::FileDigest;
use crate::rundir::manifest::ManifestInventory;
use crate::rundir::{INVENTORY_CSV, INVENTORY_JOURNAL};

/// The listing's rate: `--qps`, but never above SearchMedia's own quota
/// (unlimited stays unlimited: the simulator, or a quota not shared).
fn listing_qps(qps: Option<NonZeroU32>) -> Option<NonZeroU32> {
    qps.map(|q| q.min(NonZeroU32::new(SEARCH_MEDIA_QPS).expect("constant is non-zero")))
}

/// The exit code and message of a listing that stopped.
pub(crate) fn list_error(e: ListError, stop: &StopHandle) -> CmdError {
    match e {
        ListError::Unsplittable { .. } => CmdError::new(Exit::InventoryIncomplete, anyhow::anyhow!("{e}")),
        ListError::Failed { .. } => CmdError::new(
            Exit::Stopped,
            anyhow::anyhow!("{e}; the listing so far is kept: run the same command again to resume"),
        ),
        ListError::Stopped => match stop.reason() {
            Some(StopReason::Interrupted) => CmdError::new(
                Exit::Interrupted,
                anyhow::anyhow!("the listing was interrupted; run the same command again to resume"),
            ),
            Some(r) => CmdError::new(
                Exit::Stopped,
                anyhow::anyhow!("the listing stopped: {}; run the same command again to resume", r.describe()),
            ),
            None => CmdError::internal(anyhow::anyhow!("the listing stopped with no reason")),
        },
        ListError::Io(m) => CmdError::disk("the listing", anyhow::anyhow!(m)),
        ListError::Mismatch(m) | ListError::Link(m) => CmdError::usage(m),
    }
}

/// What a finished listing printed and how it ended: `Ok` when its counts
/// prove it complete.
pub(crate) fn report_listing(listing: &Listing, shown: &str, quiet: bool) -> Result<(), CmdError> {
    let c = &listing.counts;
    if !quiet {
        eprintln!(
            "vod-image-audit: listed {} images created in [{}, {}) into {shown} ({} queries, {} pages{}{})",
            c.distinct,
            c.lower,
            c.upper,
            c.queries,
            c.pages,
            if c.split_by_category > 0 {
                format!(", {} seconds cut by category", c.split_by_category)
            } else {
                String::new()
            },
            if c.relisted > 0 { format!(", {} queries listed again", c.relisted) } else { String::new() },
        );
    }
    if c.complete() {
        return Ok(());
    }
    Err(CmdError::new(
        Exit::InventoryIncomplete,
        anyhow::anyhow!(
            "the inventory is not complete: SearchMedia counted {} images in all, the queries listed count {}, and {} distinct ids came back; images were deleted or created while listing, or the service's counts are wrong: run again",
            c.root_total,
            c.leaf_total,
            c.distinct
        ),
    ))
}

/// `list-images --out FILE`.
pub(crate) async fn list_images(a: &ListImagesArgs) -> CmdResult {
    let filters = inventory_filters(&a.inventory)?;
    if a.concurrency == 0 || a.concurrency > 64 {
        return Err(CmdError::usage("--concurrency must be between 1 and 64"));
    }
    let qps = match a.qps {
        None => NonZeroU32::new(crate::run::settings::DEFAULT_QPS),
        Some(Qps::Limit(n)) => Some(n),
        Some(Qps::Unlimited) => None,
    };
    let (dir, name) = match (a.out.parent(), a.out.file_name().and_then(|n| n.to_str())) {
        (Some(p), Some(n)) => (if p.as_os_str().is_empty() { Path::new(".") } else { p }, n.to_owned()),
        _ => return Err(CmdError::usage(format!("--out {}: not a file name", a.out.display()))),
    };
    let journal = format!("{name}.listing.jsonl");
    if std::fs::symlink_metadata(&a.out).is_ok() && !dir.join(&journal).exists() && !a.force {
        return Err(CmdError::usage(format!(
            "{} exists: choose another --out, or pass --force to replace it",
            a.out.display()
        )));
    }
    let target = ApiTarget::resolve(&a.api)?;
    target.refuse_an_unresolvable_host().await?;
    let client = target.client()?;
    client.first_key().await.map_err(|e| target.no_key(&e))?;
    // No STS call was made for a fixed key: the handshake is this one.
    client.check_certificate(false).await.map_err(CmdError::usage)?;
    let settings = AuditSettings {
        api: ApiMode::Single,
        qps: listing_qps(qps),
        rate_mode: RateMode::Fixed,
        burst: NonZeroU32::new(crate::run::settings::DEFAULT_BURST).expect("constant is non-zero"),
        concurrency: a.concurrency,
        retry: RetryPolicy::default(),
        max_failures: None,
        down_after: crate::run::guard::DEFAULT_DOWN_AFTER,
        audit_source: AuditSource::ImageInfo,
        // `list-images` calls SearchMedia only: its --qps is SearchMedia's.
        api_qps: vec![(Action::SearchMedia, listing_qps(qps))],
    };
    let stop = StopHandle::default();
    super::signals::spawn_signal_listener(stop.clone(), super::signals::Phase::default());
    let caller = Caller::from(Shared::new(&client, &settings, Arc::new(Counters::default()), stop.clone()));
    let mut progress = EveryFewSeconds::new(a.quiet);
    let listing = inventory::list(&caller, dir, &journal, &name, filters, a.concurrency, &mut progress)
        .await
        .map_err(|e| list_error(e, &stop))?;
    if a.json {
        let c = &listing.counts;
        let result = serde_json::json!({
            "out": a.out.display().to_string(),
            "images": c.distinct,
            "lower": c.lower,
            "upper": c.upper,
            "root_total": c.root_total,
            "leaf_total": c.leaf_total,
            "queries": c.queries,
            "pages": c.pages,
            "complete": c.complete(),
        });
        println!("{result}");
    }
    report_listing(&listing, &a.out.display().to_string(), a.quiet)?;
    std::fs::remove_file(dir.join(&journal))
        .map_err(|e| CmdError::disk(format!("removing {}", dir.join(&journal).display()), e))?;
    if !a.json {
        println!("{}", listing.counts.distinct);
    }
    Ok(Exit::Ok)
}

/// The listing phase of `run --all-images`: lists into the run directory
/// (resuming a listing its journal holds; a finished one asks nothing
/// again and writes the same inventory), then reads the inventory back as
/// the run's input; hands back its digest as the listing took it. A listing that cannot be completed ends the run here;
/// one whose counts do not add up is audited, and reported incomplete.
pub(crate) async fn list_for_run(
    settings: &super::settings::RunSettings,
    filters: inventory::Filters,
    client: &VodClient,
    dir: &Path,
    stop: &StopHandle,
) -> Result<(crate::run::input::IdList, (ManifestInventory, FileDigest)), CmdError> {
    let caller = Caller::from(Shared::new(client, &settings.audit, Arc::new(Counters::default()), stop.clone()));
    let mut progress = EveryFewSeconds::new(settings.quiet);
    let listing = inventory::list(
        &caller,
        dir,
        INVENTORY_JOURNAL,
        INVENTORY_CSV,
        filters,
        settings.audit.concurrency,
        &mut progress,
    )
    .await
    .map_err(|e| list_error(e, stop))?;
    let shown = dir.join(INVENTORY_CSV).display().to_string();
    if let Err(e) = report_listing(&listing, &shown, settings.quiet) {
        eprintln!("vod-image-audit: {e}; auditing the {} images listed", listing.counts.distinct);
    }
    let c = &listing.counts;
    if c.distinct == 0 {
        return Err(CmdError::new(
            Exit::InventoryIncomplete,
            anyhow::anyhow!(
                "SearchMedia listed no image created in [{}, {}) ({}): nothing to audit; check --region and the account the key belongs to",
                c.lower,
                c.upper,
                filters.describe()
            ),
        ));
    }
    let file = std::fs::File::open(dir.join(INVENTORY_CSV)).map_err(|e| CmdError::disk(&shown, e))?;
    let options = crate::run::input::ReadOptions { id_column: Some("image_id"), delimiter: Some(b',') };
    let ids = crate::run::input::read_ids_with(std::io::BufReader::new(file), &shown, &options)?;
    let inventory = ManifestInventory {
        listed: filters.describe(),
        lower: c.lower.clone(),
        upper: c.upper.clone(),
        root_total: c.root_total,
        leaf_total: c.leaf_total,
        distinct: c.distinct,
        complete: c.complete(),
        queries: c.queries,
        pages: c.pages,
        split_by_category: c.split_by_category,
        relisted: c.relisted,
    };
    Ok((ids, (inventory, listing.inventory)))
}
