//! The one error type of the commands, and the exit codes.
//!
//! Every failure that ends a command becomes a [`CmdError`]: the error chain
//! for the message and the [`Exit`] code that tells cron what happened. The
//! code is chosen where the error is made (by the `From` conversions of the
//! modules' own error types, or by the helpers here), never by downcasting.

use std::fmt;

use crate::api::credentials::CredentialError;
use crate::api::endpoints::EndpointError;
use crate::report::verify::Verdict;
use crate::run::input::InputError;
use crate::run::journal::JournalError;
use crate::rundir::files::room_advice;
use crate::rundir::lock::LockError;
use crate::rundir::manifest::ManifestError;
use crate::rundir::RunDirError;

/// The exit codes, as documented in `--help` ([`super::cli::EXIT_CODES_HELP`])
/// and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every unique id is found or missing.
    Ok = 0,
    /// A bug: something the tool never expects.
    Internal = 1,
    /// Usage, input or configuration error; no call was made.
    Usage = 2,
    /// Finished, but some ids failed.
    Failures = 3,
    /// Stopped early and resumable: a fatal API error, the service down, the
    /// retry budget or `--max-failures`, or a disk error.
    Stopped = 4,
    /// Another run holds the output directory.
    Locked = 5,
    /// `verify` found a problem.
    VerifyFailed = 6,
    /// Finished, and something `--fail-on` names happened (newly blocked
    /// images, failed ids, ...).
    Alert = 8,
    /// Finished, but too few found images carried `AuditStatus`
    /// (`--min-audit-status`): the blocked count cannot be trusted.
    AuditStatusMissing = 9,
    /// `--all-images` / `list-images`: the listing could not be made
    /// complete (a second too full to list, or counts that do not add up).
    InventoryIncomplete = 10,
    /// SIGINT or SIGTERM.
    Interrupted = 130,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit of a code, as a manifest records it.
    pub fn from_code(code: u8) -> Option<Exit> {
        use Exit::*;
        [
            Ok,
            Internal,
            Usage,
            Failures,
            Stopped,
            Locked,
            VerifyFailed,
            Alert,
            AuditStatusMissing,
            InventoryIncomplete,
            Interrupted,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }
}

/// Why a command ended without doing its work.
pub struct CmdError {
    exit: Exit,
    error: anyhow::Error,
}

/// The result of a command: the exit code of a command that did its work
/// (which may still report failed ids), or the error that stopped it.
pub type CmdResult = Result<Exit, CmdError>;

impl CmdError {
    /// An error with the given exit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        CmdError { exit, error: error.into() }
    }

    /// A usage, input or configuration problem: exit 2.
    pub fn usage(msg: impl fmt::Display) -> Self {
        CmdError::new(Exit::Usage, anyhow::anyhow!("{msg}"))
    }

    /// A file that could not be written or read back: exit 4, resumable;
    /// a full disk says what to do about it.
    pub fn disk(context: impl fmt::Display, e: impl Into<anyhow::Error>) -> Self {
        let e = e.into();
        let advice = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>()).and_then(room_advice);
        let message = match advice {
            Some(advice) => format!("{context}: {e:#}; {advice}"),
            None => format!("{context}: {e:#}"),
        };
        CmdError::new(Exit::Stopped, anyhow::anyhow!(message))
    }

    /// Something that should never happen: exit 1.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        CmdError::new(Exit::Internal, e)
    }

    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> u8 {
        self.exit.code()
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl fmt::Debug for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (exit {})", self.error, self.exit_code())
    }
}

/// Errors that are the user's to fix before any call: exit 2.
macro_rules! usage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for CmdError {
            fn from(e: $t) -> Self {
                CmdError::new(Exit::Usage, e)
            }
        }
    )*};
}
usage_errors!(InputError, CredentialError, EndpointError, ManifestError);

impl From<LockError> for CmdError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Busy { .. } => CmdError::new(Exit::Locked, e),
            LockError::Io { .. } => CmdError::new(Exit::Usage, e),
        }
    }
}

impl From<RunDirError> for CmdError {
    fn from(e: RunDirError) -> Self {
        match e {
            RunDirError::Lock(l) => l.into(),
            other => CmdError::new(Exit::Usage, other),
        }
    }
}

impl From<JournalError> for CmdError {
    fn from(e: JournalError) -> Self {
        match e {
            // The disk, not the user: free space or fix the device and resume.
            JournalError::Io { .. } => CmdError::new(Exit::Stopped, e),
            JournalError::OtherInput { .. }
            | JournalError::OtherConfig { .. }
            | JournalError::Damaged { .. }
            | JournalError::OtherFormat { .. } => CmdError::new(Exit::Usage, e),
        }
    }
}

/// What `verify` found, as an exit code.
pub fn verdict_exit(v: &Verdict) -> Exit {
    if v.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::VerifyFailed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_exit_code() {
        let busy = LockError::Busy { dir: "d".into(), holder: "pid 1".into() };
        assert_eq!(CmdError::from(RunDirError::Lock(busy)).exit_code(), 5);
        let journal_io = JournalError::Io { path: "j".into(), reason: "No space left on device".into() };
        assert_eq!(CmdError::from(journal_io).exit_code(), 4, "a disk error is not a usage error");
        let other = JournalError::OtherInput { path: "j".into(), theirs: "a".into(), ours: "b".into() };
        assert_eq!(CmdError::from(other).exit_code(), 2);
        assert_eq!(CmdError::from(InputError::NoIds { file: "f".into() }).exit_code(), 2);
        assert_eq!(CmdError::disk("writing x", std::io::Error::other("EIO")).exit_code(), 4);
        assert_eq!(CmdError::usage("bad flag").to_string(), "bad flag");
        assert_eq!(Exit::Interrupted.code(), 130);
    }
}
