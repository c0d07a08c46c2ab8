//! The commands on finished runs: `verify DIR` and `diff OLD NEW` (`--json`: the counts on stdout).
//! `diff` reads only runs that verify (their manifest and `images.csv`).

use std::path::Path;

use super::cli::{DiffArgs, VerifyArgs};
use super::error::{verdict_exit, CmdError, CmdResult, Exit};
use crate::report::changes::{self, CHANGE_KINDS};
use crate::report::verify;
use crate::report::write::ChangesWriter;
use crate::report::write::CsvStyle;
use crate::rundir::files::{read_small_file, write_atomic};
use crate::rundir::signature::{self, SignatureCheck};
use crate::rundir::{IMAGES_CSV, MANIFEST_JSON, MANIFEST_SIG};

/// `verify DIR`: what was checked on stdout, exit 6 on any problem.
pub(crate) fn verify(a: &VerifyArgs) -> CmdResult {
    let mut v = verify::verify(&a.dir, a.manifest_sha256.as_deref())?;
    check_signature(a, &mut v)?;
    let exit = verdict_exit(&v);
    if a.json {
        let result = serde_json::json!({
            "dir": a.dir.display().to_string(),
            "ok": exit == Exit::Ok,
            "checked": v.checked,
            "problems": v.problems,
            "exit_code": exit.code(),
        });
        println!("{result}");
    } else {
        for line in &v.checked {
            println!("ok: {line}");
        }
        for p in &v.problems {
            println!("FAILED: {p}");
        }
        if exit == Exit::Ok {
            println!("verified: {} is intact and complete", a.dir.display());
        }
    }
    if exit != Exit::Ok {
        eprintln!("vod-image-audit: {}: {} problem(s) found", a.dir.display(), v.problems.len());
    }
    Ok(exit)
}

/// The signature's part of `verify`: with `--allowed-signers`, a good
/// signature by a listed key; without, a manifest that names a signing key
/// must still have its signature beside it (a run cut between the two).
fn check_signature(a: &VerifyArgs, v: &mut verify::Verdict) -> Result<(), CmdError> {
    let sig_path = a.dir.join(MANIFEST_SIG);
    match &a.allowed_signers {
        Some(path) => {
            let file = path.display().to_string();
            let (bytes, _) = read_small_file(path, signature::MAX_SIGNERS_BYTES)
                .map_err(|e| CmdError::usage(format!("--allowed-signers {file}: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| CmdError::usage(format!("--allowed-signers {file}: not UTF-8 text")))?;
            match signature::check(&a.dir, &text, &file) {
                SignatureCheck::Good { principals } => {
                    v.checked.push(format!("{MANIFEST_SIG}: a good signature by {principals} ({file})"))
                }
                SignatureCheck::Bad(why) => v.problems.push(why),
            }
        }
        None => {
            let named = crate::rundir::manifest::Manifest::read(&a.dir).ok().and_then(|m| m.signing_key);
            if let Some(fingerprint) = named.filter(|_| !sig_path.exists()) {
                v.problems.push(format!(
                    "{MANIFEST_SIG}: missing, though the manifest names the signing key {fingerprint}: the run stopped before signing, or the signature was removed; sign it with `ssh-keygen -Y sign -n {} -f KEY {}` (the file it writes is the one the run would have)",
                    signature::NAMESPACE,
                    a.dir.join(MANIFEST_JSON).display()
                ));
            }
        }
    }
    Ok(())
}

/// `diff OLD NEW`: changes.csv to stdout or `--out`, counts to stderr.
pub(crate) fn diff(a: &DiffArgs) -> CmdResult {
    // Both runs verified before either is read: an edited cell would
    // otherwise be reported as a change that never happened (or hide one).
    // A stopped run may be compared; its ids not attempted are not compared.
    let mut listed = [false, false];
    let mut manifests = Vec::new();
    for (i, dir) in [&a.old, &a.new].into_iter().enumerate() {
        let m = verify::earlier_run(dir, &[IMAGES_CSV], false)
            .map_err(|e| CmdError::new(Exit::VerifyFailed, anyhow::anyhow!("diff: {e}")))?;
        listed[i] = m.inventory.is_some();
        manifests.push(m);
    }
    let (before, after) = (&manifests[0], &manifests[1]);
    let or = |v: &str, default: &'static str| if v.is_empty() { default.to_owned() } else { v.to_owned() };
    let settings = changes::settings_changes(
        before,
        &or(&after.settings.audit_source, "image-info"),
        &or(&after.settings.api, "single"),
        &after.input.id_column,
    );
    let open = |dir: &Path| -> Result<std::io::BufReader<std::fs::File>, CmdError> {
        let p = dir.join(IMAGES_CSV);
        let f = std::fs::File::open(&p)
            .map_err(|e| CmdError::usage(format!("{}: {e} (diff needs runs with images.csv)", p.display())))?;
        Ok(std::io::BufReader::new(f))
    };
    let (old, new) = (open(&a.old)?, open(&a.new)?);
    let old = changes::records_from_csv(old, "the older images.csv");
    let new = changes::records_from_csv(new, "the newer images.csv");
    let compared_with = Some(a.old.display().to_string());
    // Two runs of --all-images: an image in one only is a change.
    let inventories = listed[0] && listed[1];
    let counts = match &a.out {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if dir.join(MANIFEST_JSON).exists() {
                return Err(CmdError::usage(format!(
                    "diff --out {}: {} holds a finished run, whose files its manifest proves; write the changes elsewhere",
                    path.display(),
                    dir.display()
                )));
            }
            let name =
                path.file_name().and_then(|n| n.to_str()).ok_or_else(|| CmdError::usage("--out needs a file name"))?;
            let mut counts = None;
            write_atomic(dir, name, |w| {
                let mut writer = ChangesWriter::new(w, CsvStyle::default())?;
                counts = Some(changes::compare_with_settings(old, new, compared_with, inventories, &settings, |c| {
                    writer.write(c)
                })?);
                writer.finish()
            })
            .map_err(|e| CmdError::usage(format!("writing {}: {e}", path.display())))?;
            counts.expect("set by the writer")
        }
        // --json: the counts are all stdout carries.
        None if a.json => changes::compare_with_settings(old, new, compared_with, inventories, &settings, |_| Ok(()))
            .map_err(|e| CmdError::usage(format!("diff: {e}")))?,
        None => {
            let stdout = std::io::stdout();
            let compared = (|| {
                let mut writer = ChangesWriter::new(stdout.lock(), CsvStyle::default())?;
                let counts = changes::compare_with_settings(old, new, compared_with, inventories, &settings, |c| {
                    writer.write(c)
                })?;
                writer.finish()?;
                Ok::<_, std::io::Error>(counts)
            })();
            compared.map_err(|e| CmdError::usage(format!("diff: {e}")))?
        }
    };
    if !counts.settings_changed.is_empty() {
        eprintln!(
            "vod-image-audit: the runs used different settings ({}): the {} change(s) they explain are marked explained_by",
            counts.settings_changed.join(", "),
            counts.explained.values().sum::<u64>()
        );
    }
    let parts: Vec<String> = CHANGE_KINDS.iter().map(|k| format!("{k} {}", counts.counts[*k])).collect();
    eprintln!(
        "vod-image-audit: {} ids compared ({} not in both or failed): {}",
        counts.compared,
        counts.not_compared,
        parts.join(", ")
    );
    if a.json {
        let line = serde_json::json!({
            "old": a.old.display().to_string(),
            "new": a.new.display().to_string(),
            "compared": counts.compared,
            "not_compared": counts.not_compared,
            "counts": counts.counts,
        });
        println!("{line}");
    }
    Ok(Exit::Ok)
}
