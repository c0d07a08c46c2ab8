//! Where each setting of `run` and `check` comes from, and the command
//! line's parsing that puts them together ([`parse`]).
//!
//! A flag of `run` or `check` may also come from the variable
//! `VOD_IMAGE_AUDIT_<FLAG>` (`--audit-source`: `VOD_IMAGE_AUDIT_AUDIT_SOURCE`)
//! or from the TOML file of `--config FILE` (or `VOD_IMAGE_AUDIT_CONFIG`),
//! whose keys are the flags' long names (`audit-source` or `audit_source`).
//! The command line wins over the environment, which wins over the file. A
//! value from the file is handed to clap as if typed, so it is checked
//! exactly as the flag is; its errors name the file and the line.
//!
//! No flag takes a secret, so no setting does: a key of the file that is
//! not a flag is refused, one that looks like a secret (a key secret, a
//! token, a password) with a message that says where secrets go, and never
//! with its value.
//!
//! Owns the names of the variables and the file's reading (bounded); what
//! a setting means is [`super::settings`]'.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use clap::builder::Command;
use clap::parser::ValueSource;
use clap::{Arg, CommandFactory, FromArgMatches};

use super::cli::{Cli, Command as Sub};
use super::error::CmdError;
use super::values::{Source, Sources};

/// The prefix of the variable of each flag.
pub const ENV_PREFIX: &str = "VOD_IMAGE_AUDIT_";

/// The variable that names the config file when `--config` is not given.
pub const CONFIG_VAR: &str = "VOD_IMAGE_AUDIT_CONFIG";

/// The largest config file read: a settings file is a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The commands whose flags may come from the environment and the file.
const WITH_SETTINGS: &[&str] = &["run", "check"];

/// The variable of a flag: `audit-source` → `VOD_IMAGE_AUDIT_AUDIT_SOURCE`.
pub fn env_name(long: &str) -> String {
    format!("{ENV_PREFIX}{}", long.to_ascii_uppercase().replace('-', "_"))
}

/// The command line with every `run` and `check` flag readable from its
/// variable (a variable set but empty counts as unset), and `--config`.
fn command() -> Command {
    let mut cmd = Cli::command();
    for name in WITH_SETTINGS {
        cmd = cmd.mut_subcommand(name, |sub| {
            sub.mut_args(|a| match a.get_long().map(env_name) {
                Some(var) if std::env::var_os(&var).is_some_and(|v| !v.is_empty()) => a.env(var),
                _ => a,
            })
            .arg(
                Arg::new("config")
                    .long("config")
                    .value_name("FILE")
                    .help(format!(
                        "Read settings from this TOML file: the flags' long names as keys (qps = 20, audit-source = \"both\", fail-on = [\"newly_blocked\"]); a flag or its {ENV_PREFIX}<FLAG> variable wins over the file (also: {CONFIG_VAR})"
                    )),
            )
        });
    }
    cmd
}

/// Parses the command line, with the environment and the config file
/// behind it. A usage error is clap's (printed, exit 2, as `Cli::parse`
/// does); a config file that cannot be used is a [`CmdError`].
pub fn parse(args: &[OsString]) -> Result<Cli, CmdError> {
    let cmd = command();
    let sub_name = args.get(1).and_then(|a| a.to_str()).filter(|s| WITH_SETTINGS.contains(s));
    let mut argv = args.to_vec();
    let mut from_file: HashMap<String, usize> = HashMap::new();
    let mut file_shown = String::new();
    if let Some(sub) = sub_name.and_then(|n| cmd.find_subcommand(n)) {
        if let Some(path) = config_path(&args[2..]) {
            file_shown = path.to_string_lossy().into_owned();
            let text = read_config(&path)?;
            let is_flag = |key: &str| sub.get_arguments().any(|a| a.get_long() == Some(key));
            for entry in entries(&text, &file_shown, is_flag)? {
                let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some(entry.key.as_str())) else {
                    return Err(unknown_key(&file_shown, &entry, sub.get_name()));
                };
                if entry.key == "config" {
                    return Err(CmdError::usage(format!(
                        "{file_shown} line {}: config: a config file cannot name another",
                        entry.line
                    )));
                }
                let var = env_name(&entry.key);
                if given(&args[2..], arg) || std::env::var_os(&var).is_some_and(|v| !v.is_empty()) {
                    continue;
                }
                if arg.get_action().takes_values() {
                    for v in &entry.values {
                        argv.push(format!("--{}={v}", entry.key).into());
                    }
                } else if entry.values.iter().any(|v| v == "true") {
                    argv.push(format!("--{}", entry.key).into());
                } else if entry.values.iter().any(|v| v != "false") {
                    return Err(CmdError::usage(format!(
                        "{file_shown} line {}: {} is a switch: write {} = true or false",
                        entry.line, entry.key, entry.key
                    )));
                }
                from_file.insert(entry.key.clone(), entry.line);
            }
        }
    }
    let matches = match cmd.clone().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => return Err(clap_error(e, &from_file, &file_shown)),
    };
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Some(name), Some((_, sub_matches))) = (sub_name, matches.subcommand()) {
        let sub = cmd.find_subcommand(name).expect("a listed subcommand");
        let mut sources = Vec::new();
        for arg in sub.get_arguments() {
            let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
            let source = match sub_matches.value_source(id) {
                Some(ValueSource::CommandLine) => match from_file.get(long) {
                    Some(line) => Source::File { path: file_shown.clone(), line: *line },
                    None => Source::CommandLine,
                },
                Some(ValueSource::EnvVariable) => Source::Env(env_name(long)),
                _ => continue,
            };
            sources.push((shown_setting(arg, long, sub_matches), source));
        }
        match &mut cli.command {
            Sub::Run(a) => a.sources = Sources(sources),
            Sub::Check(a) => a.sources = Sources(sources),
            _ => {}
        }
    }
    Ok(cli)
}

/// `--qps 9`, `--json`, `--fail-on newly_blocked,failed`; a webhook's URL,
/// which holds its token, is not shown.
fn shown_setting(arg: &Arg, long: &str, m: &clap::ArgMatches) -> String {
    if !arg.get_action().takes_values() {
        return format!("--{long}");
    }
    if long == "notify" {
        return "--notify (URL not shown)".to_owned();
    }
    let values: Vec<String> = m
        .get_raw(arg.get_id().as_str())
        .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    format!("--{long} {}", values.join(","))
}

/// A clap error about a value the file gave names the file and the line.
fn clap_error(e: clap::Error, from_file: &HashMap<String, usize>, file: &str) -> CmdError {
    use clap::error::{ContextKind, ContextValue};
    let flag = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.trim_start_matches('-').split([' ', '=']).next().map(str::to_owned),
        _ => None,
    };
    match flag.as_deref().and_then(|f| from_file.get(f).map(|line| (f, line))) {
        Some((flag, line)) => {
            let text = e.render().to_string();
            let text = text.trim().trim_start_matches("error: ");
            let first = text.lines().next().unwrap_or(text);
            CmdError::usage(format!("{file} line {line}: {flag}: {first}"))
        }
        None => e.exit(),
    }
}

/// `--config FILE` or `--config=FILE` among the subcommand's arguments,
/// else `VOD_IMAGE_AUDIT_CONFIG`.
fn config_path(args: &[OsString]) -> Option<std::path::PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(Into::into);
        }
        if let Some(p) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(p.into());
        }
    }
    std::env::var_os(CONFIG_VAR).filter(|v| !v.is_empty()).map(Into::into)
}

/// Whether the flag is on the command line (`--name`, `--name=...`, `-q`).
fn given(args: &[OsString], arg: &Arg) -> bool {
    let long = arg.get_long().map(|l| format!("--{l}"));
    let short = arg.get_short().map(|s| format!("-{s}"));
    args.iter().filter_map(|a| a.to_str()).any(|a| {
        long.as_deref().is_some_and(|l| a == l || a.strip_prefix(l).is_some_and(|rest| rest.starts_with('=')))
            || short.as_deref() == Some(a)
    })
}

fn read_config(path: &Path) -> Result<String, CmdError> {
    let what = |why: String| CmdError::usage(format!("--config {}: {why}", path.display()));
    let (bytes, _) = crate::rundir::files::read_small_file(path, MAX_CONFIG_BYTES).map_err(|e| what(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| what("not UTF-8 text; a config file is TOML".to_owned()))
}

/// One key of the config file: its flag name, its values as typed on a
/// command line, its line.
#[derive(Debug, PartialEq)]
struct Entry {
    key: String,
    values: Vec<String>,
    line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Whether a key names a secret: refused, whatever the file's other keys.
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    ["secret", "token", "password", "passwd", "access_key", "private_key", "credential"].iter().any(|s| k.contains(s))
}

/// The file's keys, in order: a flat table of strings, numbers, booleans
/// and lists of them; a key that is no flag (`is_flag`) and looks like a
/// secret is refused. Pure, so the parsing is tested without a file.
fn entries(text: &str, file: &str, is_flag: impl Fn(&str) -> bool) -> Result<Vec<Entry>, CmdError> {
    use toml::de::{DeTable, DeValue};
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        CmdError::usage(format!("{file} line {line}: not TOML: {}", e.message().trim()))
    })?;
    let scalar = |v: &DeValue<'_>| -> Option<String> {
        match v {
            DeValue::String(s) => Some(s.to_string()),
            DeValue::Integer(i) if i.radix() == 10 => Some(i.as_str().replace('_', "")),
            DeValue::Float(f) => Some(f.as_str().replace('_', "")),
            DeValue::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    };
    // The parser's map is sorted by key: the file's order, for the first error to be the first line's.
    let mut keys: Vec<_> = table.get_ref().iter().collect();
    keys.sort_by_key(|(key, _)| key.span().start);
    let mut out = Vec::new();
    for (key, value) in keys {
        let line = line_of(text, key.span().start);
        let name = key.get_ref().to_string();
        if !is_flag(&name.replace('_', "-")) && looks_secret(&name) {
            return Err(CmdError::usage(format!(
                "{file} line {line}: {name}: a secret is never read from a config file (nor from a flag); \
                 give the key through ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, a credentials \
                 file or a role (see --help)"
            )));
        }
        let values = match value.get_ref() {
            DeValue::Array(items) => items.iter().map(|v| scalar(v.get_ref())).collect::<Option<Vec<_>>>(),
            v => scalar(v).map(|s| vec![s]),
        };
        let Some(values) = values else {
            return Err(CmdError::usage(format!(
                "{file} line {line}: {name}: give a string, a number, true/false or a list of them (tables and dates are not settings)"
            )));
        };
        out.push(Entry { key: name.replace('_', "-"), values, line });
    }
    Ok(out)
}

fn unknown_key(file: &str, entry: &Entry, sub: &str) -> CmdError {
    CmdError::usage(format!(
        "{file} line {}: {}: not a setting of `{sub}`; the keys are its flags' long names (qps, audit-source, fail-on, ...; see `vod-image-audit {sub} --help`)",
        entry.line, entry.key
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_every_kind_of_value_with_its_line() {
        let text = "# nightly\nqps = 20\naudit_source = \"both\"\n\ncsv-bom = true\nfail-on = [\"newly_blocked\", \"failed\"]\nmin-audit-status = 0.95\n";
        let e = entries(text, "f.toml", |_| false).unwrap();
        let got: Vec<(&str, Vec<&str>, usize)> =
            e.iter().map(|e| (e.key.as_str(), e.values.iter().map(String::as_str).collect(), e.line)).collect();
        assert_eq!(
            got,
            vec![
                ("qps", vec!["20"], 2),
                ("audit-source", vec!["both"], 3),
                ("csv-bom", vec!["true"], 5),
                ("fail-on", vec!["newly_blocked", "failed"], 6),
                ("min-audit-status", vec!["0.95"], 7),
            ]
        );
    }

    #[test]
    fn a_table_or_a_date_is_not_a_setting() {
        for text in ["[run]\nqps = 1\n", "qps = 1979-05-27\n"] {
            let e = entries(text, "f.toml", |_| false).unwrap_err().to_string();
            assert!(e.contains("f.toml line 1"), "{e}");
        }
    }

    #[test]
    fn secret_looking_keys_are_refused_without_their_value() {
        for key in ["access_key_secret", "AccessKeySecret", "sts-token", "security_token", "password", "access_key_id"]
        {
            let e = entries(&format!("{key} = \"s3cr3t\"\n"), "f.toml", |_| false).unwrap_err().to_string();
            assert!(e.contains("never read from a config file") && !e.contains("s3cr3t"), "{key}: {e}");
        }
    }

    #[test]
    fn env_names_follow_the_flags() {
        assert_eq!(env_name("audit-source"), "VOD_IMAGE_AUDIT_AUDIT_SOURCE");
        assert_eq!(env_name("sign-key"), "VOD_IMAGE_AUDIT_SIGN_KEY");
    }
}
