//! The values flags take, below every command module: the one duration
//! syntax, `--notify-on`'s choices, and where each setting came from
//! (`--dry-run` and the errors name it). Raw flags ([`super::cli`]),
//! validated settings ([`super::settings`]) and the notifier all read these,
//! so none of them needs another.

use std::time::Duration;

use super::error::CmdError;

/// A duration flag that must be more than zero (`10s`, `1500ms`).
pub(crate) fn parse_duration(flag: &str, text: &str) -> Result<Duration, CmdError> {
    let d = parse_duration_or_zero(flag, text)?;
    if d.is_zero() {
        return Err(CmdError::usage(format!("{flag} must be more than zero")));
    }
    Ok(d)
}

/// A duration flag that may be zero.
pub(crate) fn parse_duration_or_zero(flag: &str, text: &str) -> Result<Duration, CmdError> {
    duration_text(text).map_err(|e| CmdError::usage(format!("{flag} {text:?}: {e}")))
}

/// The one duration syntax of every flag: a number with a unit (`10s`,
/// `1500ms`, `1h`, `1h 30m`), or a bare number of seconds everywhere, so
/// that a script written for `--auth-timeout 3600` (STS counts whole
/// seconds) keeps its meaning on any flag.
pub(crate) fn duration_text(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Duration::from_secs).map_err(|e| format!("{e}"));
    }
    humantime::parse_duration(t).map_err(|e| format!("{e} (write e.g. 10s, 1500ms or 1h; a bare number is seconds)"))
}

/// `--auth-timeout`: a duration of whole seconds, at least one.
pub(crate) fn parse_auth_timeout(text: &str) -> Result<u64, CmdError> {
    let d = parse_duration("--auth-timeout", text)?;
    if d.subsec_nanos() != 0 {
        return Err(CmdError::usage(format!(
            "--auth-timeout {text:?}: AuthTimeout is whole seconds (e.g. 3600 or 1h)"
        )));
    }
    Ok(d.as_secs())
}

named_enum! {
    /// When to send (`--notify-on`).
    pub enum NotifyOn {
        /// Something `--fail-on` names happened.
        Alert => "alert",
        /// Ids failed, the run stopped, or the verdict or the inventory
        /// cannot be trusted (exit 9, 10).
        Problem => "problem",
        /// Every run that reaches its reports.
        Always => "always",
    }
}

/// Where a setting came from, as `--dry-run` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    Env(String),
    File { path: String, line: usize },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::CommandLine => write!(f, "the command line"),
            Source::Env(var) => write!(f, "{var}"),
            Source::File { path, line } => write!(f, "{path} line {line}"),
        }
    }
}

/// Each setting given (not left at its default), with its source, in the
/// order of `--help`: `--qps 9 (from audit.toml line 2)`.
#[derive(Debug, Clone, Default)]
pub struct Sources(pub Vec<(String, Source)>);

impl Sources {
    /// One line per setting given, then one for the rest.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            self.0.iter().map(|(setting, source)| format!("setting: {setting} (from {source})")).collect();
        lines.push("settings not listed: their defaults".to_owned());
        lines
    }
}

impl Sources {
    /// A usage error about a flag set by a variable or the file says where
    /// it was set: `--concurrency must be between 1 and 1024 (set in
    /// audit.toml line 2)`. Any other error is returned as it is.
    pub fn annotate(&self, e: CmdError) -> CmdError {
        if e.exit_code() != super::error::Exit::Usage.code() {
            return e;
        }
        let text = e.to_string();
        let Some(rest) = text.strip_prefix("--") else { return e };
        let flag: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let named = |setting: &str| {
            setting
                .strip_prefix("--")
                .and_then(|s| s.strip_prefix(flag.as_str()))
                .is_some_and(|r| r.is_empty() || r.starts_with(' '))
        };
        match self.0.iter().find(|(setting, _)| named(setting)) {
            Some((_, source)) if *source != Source::CommandLine => CmdError::usage(format!("{text} (set in {source})")),
            _ => e,
        }
    }
}
