//! Hostile input through the real binary: a device or a pipe that never
//! ends (`/dev/zero`, `/dev/urandom`, stdin fed without end) is refused with
//! exit 2 and a message naming it, before any call, after reading a bounded
//! amount of it.
//!
//! The memory bound: every run here is under `ulimit -v` ([`VSZ_LIMIT_KIB`]).
//! A normal audit of 300 ids maps about 220 MB (VmPeak, mostly reserved
//! thread stacks and malloc arenas, 17 MB resident) and still runs under a
//! limit of 32 MB; a reader that buffers a line without end (the old one
//! grew to 3.9 GB resident on `/dev/zero` in 12 s) hits the limit within a
//! second or two and aborts. Each run also has a [`DEADLINE`], so a reader
//! that never stops fails the test instead of hanging it. Nothing here
//! measures time.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, id_file, Audit, Output, Workdir};

/// The address-space limit, in KiB, of every run here: nearly twice what a
/// normal audit maps unconstrained, a tenth of what the old reader reached.
const VSZ_LIMIT_KIB: u64 = 400_000;

/// How long a run may take before it is killed and the test fails: the
/// refusals here take well under a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// Endless stdin: `head`, then `chunk` again and again until the binary
/// closes the pipe.
pub(crate) struct Feed {
    head: &'static [u8],
    chunk: &'static [u8],
}

// A simulator that must get no call, and a work directory.
common::module_bench!(20);

impl Bench {
    /// `run --input <input>` under the limit and the deadline, stdin fed
    /// from `feed` (or /dev/null).
    fn run(&self, input: &str, feed: Option<Feed>) -> Output {
        let audit = Audit::new(&self.wd, &self.server).input(input).qps(500).args(["--progress", "never"]);
        let tag = input.trim_start_matches("/dev/").replace(['/', '.'], "_");
        let out = run_limited(&self.wd, &audit, &tag, feed);
        assert!(!out.stderr.contains("panicked"), "{}", out.describe());
        out
    }

    /// Exit 2 with every `wants` in the message, not one call, no report.
    fn expect_refused(&self, out: &Output, wants: &[&str]) {
        self.expect_refused_without_report(out, wants);
    }
}

/// Runs `audit` under `bash -c 'ulimit -v VSZ_LIMIT_KIB && exec ...'` (the
/// command, arguments and environment of [`Audit::command`]), its output
/// to files named by `tag`, its stdin fed from `feed` by a thread (or
/// /dev/null); kills it and panics if it has not exited within [`DEADLINE`].
pub(crate) fn run_limited(wd: &Workdir, audit: &Audit, tag: &str, feed: Option<Feed>) -> Output {
    let inner = audit.command();
    let script = format!("ulimit -v {VSZ_LIMIT_KIB} && exec \"$0\" \"$@\"");
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).arg(inner.get_program()).args(inner.get_args()).env_clear();
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.current_dir(inner.get_current_dir().unwrap_or(wd.path()));
    let stdout = wd.path().join(format!("{tag}.stdout"));
    let stderr = wd.path().join(format!("{tag}.stderr"));
    cmd.stdin(if feed.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let argv = audit.argv().join(" ");
    let described = format!("(ulimit -v {VSZ_LIMIT_KIB}) vod-image-audit {argv}");
    let mut child = cmd.spawn().unwrap();

    let feeder = feed.map(|feed| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // Until the binary exits and the pipe breaks.
            let mut sent = feed.head.len() as u64;
            if pipe.write_all(feed.head).is_ok() {
                while pipe.write_all(feed.chunk).is_ok() {
                    sent += feed.chunk.len() as u64;
                }
            }
            sent
        })
    });

    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{described} did not exit within {DEADLINE:?}\n--- stderr ---\n{}", read_lossy(&stderr));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(feeder) = feeder {
        let sent = feeder.join().unwrap();
        eprintln!("{described}: {sent} bytes written to its stdin before it closed it");
    }
    Output {
        cmd: described,
        code: status.code().unwrap_or(-1),
        stdout: read_lossy(&stdout),
        stderr: read_lossy(&stderr),
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

#[test]
fn the_limit_leaves_room_for_a_normal_run() {
    let b = Bench::new(1);
    b.wd.write("ids.csv", id_file(&b.cat.ids()));
    let out = b.run("ids.csv", None);
    out.expect_code(0);
    assert_eq!(b.server.stats().requests, b.cat.ids().len() as u64, "{}", out.describe());
}

#[test]
fn dev_zero_is_refused_at_the_first_byte() {
    let b = Bench::new(2);
    let out = b.run("/dev/zero", None);
    b.expect_refused(&out, &["/dev/zero: line 1 contains a NUL byte: this is not a CSV text file"]);
}

#[test]
fn dev_urandom_is_refused_at_once() {
    let b = Bench::new(3);
    let out = b.run("/dev/urandom", None);
    // A NUL byte comes every 256 bytes on average: the first read holds one.
    b.expect_refused(&out, &["/dev/urandom: line ", "contains a NUL byte"]);
}

#[test]
fn endless_stdin_without_a_line_end_is_refused() {
    let b = Bench::new(4);
    let out = b.run("-", Some(Feed { head: b"ImageId\n", chunk: &[b'x'; 4096] }));
    b.expect_refused(&out, &["<stdin>: line 2 is longer than 64 KiB; is this a CSV of ids?"]);
}

#[test]
fn endless_stdin_of_zeros_is_refused() {
    let b = Bench::new(5);
    let out = b.run("-", Some(Feed { head: b"ImageId\r\n", chunk: &[0; 4096] }));
    b.expect_refused(&out, &["<stdin>: line 2 contains a NUL byte"]);
}

#[test]
fn endless_stdin_of_rows_that_are_not_ids_is_refused() {
    let b = Bench::new(6);
    let out = b.run("-", Some(Feed { head: b"ImageId\n", chunk: b"GET /index.html 200\n" }));
    b.expect_refused(
        &out,
        &[
            "<stdin>: lines 2-1002: 1001 rows in a row are not image ids",
            "\"GET /index.html 200\"",
            "does not look like a list of image ids",
        ],
    );
}

#[test]
fn endless_stdin_inside_an_open_quote_is_refused() {
    let b = Bench::new(7);
    // Short lines, but the quote on line 3 is never closed: one field without end.
    let out = b.run("-", Some(Feed { head: b"ImageId,title\nAAA,x\nBBB,\"opened\n", chunk: b"more text\n" }));
    b.expect_refused(&out, &["<stdin>: line 3: a quoted field opened on this line runs on for more than 64 KiB"]);
}
