//! `run --all-images` and `list-images` against the simulator's
//! `SearchMedia`: an account with more images than one query can page
//! through, one second too full to list, a listing killed and resumed, and
//! two nights compared.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{csv_rows, poll_until, Audit, SimServer, TestCatalog, Workdir};
use vod_image_audit::sim::catalog::{Burst, BURST_SECOND};

/// How long a run may take here.
const LIMIT: Duration = Duration::from_secs(240);

/// `run --all-images` with no input file.
fn all_images<'a>(wd: &'a Workdir, server: &SimServer) -> Audit<'a> {
    Audit::new(wd, server).no_input().arg("--all-images")
}

fn inventory_ids(wd: &Workdir, path: &str) -> Vec<String> {
    csv_rows(&wd.read(path)).into_iter().map(|r| r["image_id"].clone()).collect()
}

/// 12,000 images, 6,000 of them in one hour and 5,500 in a single second
/// over four categories: more than one query can page through twice
/// over. The run audits exactly the account's images, the inventory's
/// counts prove it, and no query went past the paging window.
#[test]
fn all_images_lists_an_account_past_the_paging_window_completely() {
    let cat = TestCatalog::generate_burst(12_000, 41, Burst { second: 5_500, categories: 4, hour: 6_000 });
    // The listing is what this test is about: the audit that follows asks
    // GetImageInfos, 20 ids a call (with AuditStatus in its answers), so the
    // 23,000 lookups cost 1,150 calls and the test stays well under 30 s on
    // a loaded machine.
    let mut config = cat.config();
    config.batch_omits_audit_status = false;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    let out = all_images(&wd, &server).qps(0).concurrency(32).args(["--format", "csv,json", "--api", "batch"]).run();
    out.expect_code(0);

    let listed = inventory_ids(&wd, "out/inventory.csv");
    let distinct: HashSet<&String> = listed.iter().collect();
    assert_eq!(listed.len(), 12_000, "inventory rows");
    assert_eq!(distinct.len(), 12_000, "inventory ids are distinct");
    let catalog: HashSet<String> = cat.ids().into_iter().collect();
    assert!(listed.iter().all(|id| catalog.contains(id)), "the inventory holds an id the account has not");

    let m = wd.json("out/manifest.json");
    let inv = &m["inventory"];
    assert_eq!(inv["root_total"], 12_000, "{inv}");
    assert_eq!(inv["leaf_total"], 12_000, "{inv}");
    assert_eq!(inv["distinct"], 12_000, "{inv}");
    assert_eq!(inv["complete"], true, "{inv}");
    assert!(inv["split_by_category"].as_u64().unwrap() >= 1, "the burst second was cut by category: {inv}");
    assert_eq!(m["ledger"]["unique_ids"], 12_000);
    assert_eq!(m["ledger"]["found"], 12_000);
    assert_eq!(m["input"]["path"], "all images (SearchMedia)");
    let digest = m["files"].as_array().unwrap().iter().find(|f| f["name"] == "inventory.csv").expect("hashed");
    assert_eq!(m["input"]["sha256"], digest["sha256"]);
    assert_eq!(csv_rows(&wd.read("out/images.csv")).len(), 12_000);

    let stats = server.stats();
    assert!(stats.search.max_page_end <= 5_000, "a query paged past 5,000: {:?}", stats.search);
    assert_eq!(stats.search.over_limit, 0);
    assert_eq!(stats.search.duplicate_pages, 0, "{:?}", stats.search);
    // About a page per 100 images, plus the first pages of the queries cut.
    assert!(stats.search.pages < 12_000 / 100 * 2, "{:?}", stats.search);
    assert!(!wd.path().join("out/inventory.jsonl").exists(), "the listing journal goes with the run's");

    let verify = wd.run(&["verify", "out"], &[], None);
    verify.expect_code(0);
}

/// 5,001 images in one second of one category cannot be listed by any
/// query SearchMedia takes: the run stops with exit 10, names the second
/// and the count, audits nothing, writes no report; the directory resumes
/// (the same error, without asking the pages again).
#[test]
fn a_second_too_full_to_list_stops_with_exit_10_and_no_report() {
    let cat = TestCatalog::generate_burst(6_000, 42, Burst { second: 5_001, categories: 1, hour: 0 });
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let out = all_images(&wd, &server).qps(0).concurrency(16).run();
    out.expect_code(10);
    assert!(out.stderr.contains(&format!("the second {BURST_SECOND}")), "{}", out.describe());
    assert!(out.stderr.contains("5001"), "{}", out.describe());
    assert!(!out.stderr.contains("panicked"));
    for report in ["manifest.json", "images.csv", "summary.json", "inventory.csv"] {
        assert!(!wd.path().join("out").join(report).exists(), "{report} written for an incomplete inventory");
    }
    assert!(wd.path().join("out/inventory.jsonl").exists(), "the listing is kept to resume");
    assert!(server.stats().answers_by_image.is_empty(), "something was audited");

    let pages = server.stats().search.pages;
    let again = all_images(&wd, &server).qps(0).concurrency(16).run();
    again.expect_code(10);
    assert!(again.stderr.contains(&format!("the second {BURST_SECOND}")), "{}", again.describe());
    assert_eq!(server.stats().search.duplicate_pages, 0, "the resumed listing asked pages again");
    assert!(server.stats().search.pages - pages <= 2, "{} pages asked again", server.stats().search.pages - pages);
}

/// `list-images` refuses to overwrite a file, lists into a CSV and prints
/// the count; the filters narrow the listing.
#[test]
fn list_images_writes_the_inventory_and_prints_the_count() {
    let cat = TestCatalog::generate(400, 43);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let list = |args: &[&str]| {
        let mut a = Audit::new(&wd, &server).no_input().no_out();
        a = a.subcommand("list-images").args(args.iter().copied());
        a.run()
    };
    let out = list(&["--out", "images.csv", "--qps", "0"]);
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "400", "{}", out.describe());
    let rows = csv_rows(&wd.read("images.csv"));
    assert_eq!(rows.len(), 400);
    assert!(rows.iter().all(|r| !r["creation_time"].is_empty()));
    assert!(!wd.path().join("images.csv.listing.jsonl").exists());

    let again = list(&["--out", "images.csv"]);
    again.expect_code(2);
    assert!(again.stderr.contains("pass --force"), "{}", again.describe());

    let cut = "2024-09-01T00:00:00Z";
    let before = list(&["--out", "before.csv", "--qps", "0", "--created-before", cut]);
    before.expect_code(0);
    let after = list(&["--out", "after.csv", "--qps", "0", "--created-after", cut]);
    after.expect_code(0);
    let (b, a) = (csv_rows(&wd.read("before.csv")), csv_rows(&wd.read("after.csv")));
    assert_eq!(b.len() + a.len(), 400, "the two halves add up");
    assert!(
        b.iter().all(|r| r["creation_time"].as_str() < cut) && a.iter().all(|r| r["creation_time"].as_str() >= cut)
    );

    let future = list(&["--out", "x.csv", "--created-after", "2999-01-01T00:00:00Z"]);
    future.expect_code(2);
    assert!(future.stderr.contains("nothing to list"), "{}", future.describe());
    assert!(!wd.path().join("x.csv.listing.jsonl").exists());

    let bad = list(&["--out", "x.csv", "--created-after", "yesterday"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("not a UTC time"), "{}", bad.describe());
}

/// Killed with SIGKILL in the middle of the listing, then run again: the
/// same inventory, and no SearchMedia page asked twice beyond the ones
/// that were in flight.
#[test]
fn kill_9_during_the_listing_resumes_with_the_same_inventory() {
    let cat = TestCatalog::generate_burst(12_000, 44, Burst { second: 3_000, categories: 3, hour: 5_500 });
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let concurrency = 4u64;
    // Slow enough (about 130 pages at 40/s) to be killed while listing.
    let audit = all_images(&wd, &server).qps(40).concurrency(concurrency as usize);
    let mut child = audit.spawn("listing");
    poll_until(LIMIT, "40 SearchMedia pages", || server.stats().search.pages >= 40 || child.has_exited());
    assert!(!child.has_exited(), "the listing ended before the kill");
    child.kill9();
    let _ = child.wait(LIMIT);
    assert!(wd.path().join("out/inventory.jsonl").exists());
    assert!(!wd.path().join("out/inventory.csv").exists(), "no inventory before the listing is done");
    let pages_before = server.stats().search.pages;

    let out = all_images(&wd, &server).qps(0).concurrency(concurrency as usize).run();
    out.expect_code(0);
    let listed: HashSet<String> = inventory_ids(&wd, "out/inventory.csv").into_iter().collect();
    let catalog: HashSet<String> = cat.ids().into_iter().collect();
    assert_eq!(listed, catalog, "the resumed listing's inventory is the account");
    let s = server.stats().search;
    assert!(
        s.duplicate_pages <= concurrency,
        "{} pages asked twice (in flight at most {concurrency}): {s:?}",
        s.duplicate_pages
    );
    assert!(s.pages > pages_before, "the resumed run went on listing");
    let m = wd.json("out/manifest.json");
    assert_eq!(m["inventory"]["complete"], true, "{m}");
    assert_eq!(m["ledger"]["unique_ids"], 12_000);
}

/// Two nights of `--all-images --compare-with auto`; between them one
/// image is deleted and one added. changes.csv says so: `newly_missing`
/// (after: not listed) and `new_image`.
#[test]
fn two_nights_show_a_deleted_image_as_newly_missing_and_an_added_one_as_new_image() {
    let cat = TestCatalog::generate(300, 45);
    let wd = Workdir::new();
    let first = SimServer::start(cat.config());
    all_images(&wd, &first).out("reports/night1").qps(0).run().expect_code(0);
    drop(first);

    let mut values = cat.values.clone();
    let gone = values.remove(17);
    let gone_id = gone["ImageId"].as_str().unwrap().to_owned();
    let mut added = values[3].clone();
    let added_id = "0a1b2c3d4e5f60718293a4b5c6d7e8f9".to_owned();
    added["ImageId"] = added_id.clone().into();
    added["CreationTime"] = "2025-03-01T08:00:00Z".into();
    values.push(added);
    let second = SimServer::start(TestCatalog::from_values(values).config());
    let out = all_images(&wd, &second).out("reports/night2").qps(0).args(["--compare-with", "auto"]).run();
    out.expect_code(0);
    let changes = csv_rows(&wd.read("reports/night2/changes.csv"));
    let of = |id: &str| -> Vec<String> {
        changes.iter().filter(|r| r["image_id"] == id).map(|r| r["change"].clone()).collect()
    };
    assert_eq!(of(&gone_id), ["newly_missing"], "{changes:?}");
    let row = changes.iter().find(|r| r["image_id"] == gone_id).unwrap();
    assert_eq!(row["after"], "not listed");
    assert!(of(&added_id).contains(&"new_image".to_owned()), "{changes:?}");
    let summary = wd.json("reports/night2/summary.json");
    assert_eq!(summary["changes"]["counts"]["new_image"], 1, "{summary}");
    assert_eq!(summary["changes"]["counts"]["newly_missing"], 1, "{summary}");

    // diff says the same of the two directories.
    let diff = wd.run(&["diff", "reports/night1", "reports/night2"], &[], None);
    diff.expect_code(0);
    let rows = csv_rows(&diff.stdout);
    assert!(rows.iter().any(|r| r["image_id"] == gone_id && r["change"] == "newly_missing"), "{}", diff.describe());
    assert!(rows.iter().any(|r| r["image_id"] == added_id && r["change"] == "new_image"), "{}", diff.describe());

    // verify proves the inventory complete and audited, and catches an edit of it.
    let ok = wd.run(&["verify", "reports/night2"], &[], None);
    ok.expect_code(0);
    assert!(ok.stdout.contains("inventory: 300 images"), "{}", ok.describe());
    let text = wd.read("reports/night2/inventory.csv");
    let cut: String = text
        .lines()
        .filter(|l| !l.starts_with(&gone_id) && !l.starts_with("0a1b2c"))
        .map(|l| format!("{l}\n"))
        .collect();
    wd.write("reports/night2/inventory.csv", cut);
    let bad = wd.run(&["verify", "reports/night2"], &[], None);
    bad.expect_code(6);
    assert!(
        bad.stdout.contains("inventory.csv: changed") || bad.stderr.contains("inventory.csv: changed"),
        "{}",
        bad.describe()
    );
}

/// A service whose paging is not stable (ties in `CreationTime` ordered
/// anew for each page, so pages overlap and miss images): the listing
/// notices (distinct ids short of `Total`), cuts the query smaller, and
/// when one second of one category still pages unstably, it stops with
/// exit 10 instead of auditing a partial inventory. Without the burst the
/// same service lists completely: single seconds rarely hold ties.
#[test]
fn unstable_paging_is_caught_never_a_silently_partial_inventory() {
    let cat = TestCatalog::generate_burst(2_500, 46, Burst { second: 1_200, categories: 3, hour: 0 });
    let mut config = cat.config();
    config.search_unstable_ties = true;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    let out = all_images(&wd, &server).qps(0).concurrency(8).run();
    out.expect_code(10);
    assert!(out.stderr.contains(&format!("the second {BURST_SECOND} in category")), "{}", out.describe());
    assert!(out.stderr.contains("distinct ids"), "{}", out.describe());
    assert!(!wd.path().join("out/manifest.json").exists());

    let plain = TestCatalog::generate(2_500, 47);
    let mut config = plain.config();
    config.search_unstable_ties = true;
    let server = SimServer::start(config);
    let wd = Workdir::new();
    let out = all_images(&wd, &server).qps(0).concurrency(8).run();
    out.expect_code(0);
    assert_eq!(wd.json("out/manifest.json")["inventory"]["distinct"], 2_500);
}

/// SIGINT during the listing: exit 130, the listing kept, no report; the
/// same command then finishes it.
#[test]
fn sigint_during_the_listing_exits_130_and_the_rerun_finishes() {
    let cat = TestCatalog::generate(8_000, 48);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let child = all_images(&wd, &server).qps(20).concurrency(4).spawn("listing");
    poll_until(LIMIT, "10 SearchMedia pages", || server.stats().search.pages >= 10);
    child.interrupt();
    let out = child.wait(LIMIT);
    out.expect_code(130);
    assert!(out.stderr.contains("the listing was interrupted"), "{}", out.describe());
    assert!(wd.path().join("out/inventory.jsonl").exists());
    assert!(!wd.path().join("out/manifest.json").exists(), "no report claims anything");
    let again = all_images(&wd, &server).qps(0).run();
    again.expect_code(0);
    assert_eq!(wd.json("out/manifest.json")["inventory"]["distinct"], 8_000);
    assert_eq!(server.stats().search.duplicate_pages, 0, "{:?}", server.stats().search);
}

/// Killed during the audit that follows a finished listing: the rerun
/// re-uses the stored listing (no SearchMedia call), resumes the audit,
/// and the ledger adds up against the same inventory.
#[test]
fn kill_9_during_the_audit_reuses_the_listing() {
    let cat = TestCatalog::generate(3_000, 49);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let mut child = all_images(&wd, &server).qps(200).concurrency(4).spawn("audit");
    poll_until(LIMIT, "300 images answered", || server.stats().answers_by_image.len() >= 300 || child.has_exited());
    assert!(!child.has_exited(), "the run ended before the kill");
    child.kill9();
    let _ = child.wait(LIMIT);
    let (_, sha) = vod_image_audit::rundir::files::digest_file(&wd.path().join("out/inventory.csv")).unwrap();
    let pages = server.stats().search.pages;
    let out = all_images(&wd, &server).qps(0).run();
    out.expect_code(0);
    assert!(out.stderr.contains("resuming:"), "{}", out.describe());
    assert_eq!(server.stats().search.pages, pages, "the finished listing was asked again");
    let m = wd.json("out/manifest.json");
    assert_eq!(m["input"]["sha256"], sha, "the inventory changed on resume");
    assert!(m["resumed_ids"].as_u64().unwrap() >= 250, "{m}");
    assert_eq!(m["ledger"]["unique_ids"], 3_000);
    assert_eq!(m["ledger"]["unaccounted"], 0);
}

/// A shared directory with links planted at the names the listing writes
/// (`inventory.csv`, `inventory.jsonl`; `FILE.listing.jsonl` and FILE for
/// `list-images`): refused with exit 2 naming the link, the linked file
/// never written, no call made.
#[test]
fn links_planted_at_the_listing_s_names_are_refused() {
    use std::os::unix::fs::symlink;
    let cat = TestCatalog::generate(50, 50);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    for name in ["inventory.csv", "inventory.jsonl"] {
        let out = format!("out-{name}");
        std::fs::create_dir_all(wd.path().join(&out)).unwrap();
        let victim = wd.write(&format!("victim-{name}"), "someone else's file\n");
        symlink(&victim, wd.path().join(&out).join(name)).unwrap();
        let done = all_images(&wd, &server).out(&out).qps(0).run();
        done.expect_code(2);
        assert!(done.stderr.contains(name) && done.stderr.contains("symbolic link"), "{}", done.describe());
        assert_eq!(wd.read(&format!("victim-{name}")), "someone else's file\n", "{name} was written through");
    }
    let list = |args: &[&str]| {
        Audit::new(&wd, &server).no_input().no_out().subcommand("list-images").args(args.iter().copied()).run()
    };
    let victim = wd.write("victim-journal", "someone else's file\n");
    symlink(&victim, wd.path().join("images.csv.listing.jsonl")).unwrap();
    let done = list(&["--out", "images.csv", "--qps", "0"]);
    done.expect_code(2);
    assert!(
        done.stderr.contains("images.csv.listing.jsonl") && done.stderr.contains("symbolic link"),
        "{}",
        done.describe()
    );
    assert_eq!(wd.read("victim-journal"), "someone else's file\n");
    let victim = wd.write("victim-csv", "someone else's file\n");
    symlink(&victim, wd.path().join("list.csv")).unwrap();
    let done = list(&["--out", "list.csv", "--qps", "0", "--force"]);
    done.expect_code(2);
    assert!(done.stderr.contains("list.csv") && done.stderr.contains("symbolic link"), "{}", done.describe());
    assert_eq!(wd.read("victim-csv"), "someone else's file\n");
    assert!(server.stats().answers_by_image.is_empty());
}

/// The disk fills during the listing (a file size limit stands in for it):
/// exit 4 naming the listing journal, with the advice to free space and run
/// again; the rerun finishes the same inventory.
#[test]
fn a_full_disk_during_the_listing_stops_resumably() {
    let cat = TestCatalog::generate(3_000, 51);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let run = all_images(&wd, &server).qps(0).concurrency(4);
    let out = run.run_in_shell("trap '' XFSZ; ulimit -f 40; exec \"$0\" \"$@\"", "(ulimit -f 40)");
    out.expect_code(4);
    assert!(out.stderr.contains("inventory.jsonl"), "says which file\n{}", out.describe());
    assert!(
        out.stderr.contains("the run is resumable: free space and run the same command again"),
        "the disk-full advice\n{}",
        out.describe()
    );
    assert!(!wd.path().join("out/manifest.json").exists());
    let again = run.run();
    again.expect_code(0);
    assert_eq!(wd.json("out/manifest.json")["inventory"]["distinct"], 3_000);
}
