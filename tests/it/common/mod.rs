//! Shared test harness: the simulator in-process on 127.0.0.1:0, the real
//! binary in a scratch directory, and a failure message that shows the
//! command, status, stdout and stderr.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vod_image_audit::api::model::ImageInfo;
use vod_image_audit::sim::{self, Catalog, SimConfig, Simulator, Stats};

/// A simulator serving on a loopback port for the life of the value.
pub struct SimServer {
    pub url: String,
    pub sim: Arc<Simulator>,
    shutdown: CancellationToken,
    _rt: tokio::runtime::Runtime,
}

impl SimServer {
    pub fn start(config: SimConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let sim = Simulator::new(config);
        let shutdown = CancellationToken::new();
        rt.spawn(sim::serve(listener, sim.clone(), shutdown.clone().cancelled_owned()));
        SimServer { url: format!("http://{addr}/"), sim, shutdown, _rt: rt }
    }

    /// The simulator over https, with this PEM certificate chain and key.
    pub fn start_tls(config: SimConfig, cert_pem: &str, key_pem: &str) -> Self {
        let tls = sim::tls_config(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let sim = Simulator::new(config);
        let shutdown = CancellationToken::new();
        rt.spawn(sim::serve_tls(listener, tls, sim.clone(), shutdown.clone().cancelled_owned()));
        SimServer { url: format!("https://{addr}/"), sim, shutdown, _rt: rt }
    }

    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A generated catalog as both the simulator's and the test's view.
pub struct TestCatalog {
    pub values: Vec<Value>,
    pub by_id: HashMap<String, ImageInfo>,
}

impl TestCatalog {
    pub fn generate(n: usize, seed: u64) -> Self {
        Self::from_values(sim::catalog::generate(n, seed, "cn-shanghai"))
    }

    /// A generated catalog whose creation times crowd into one second and hour.
    pub fn generate_burst(n: usize, seed: u64, burst: sim::catalog::Burst) -> Self {
        Self::from_values(sim::catalog::generate_iter_with(n, seed, "cn-shanghai", burst).collect())
    }

    pub fn from_values(values: Vec<Value>) -> Self {
        let by_id = values
            .iter()
            .map(|v| (v["ImageId"].as_str().unwrap().to_owned(), serde_json::from_value(v.clone()).unwrap()))
            .collect();
        TestCatalog { values, by_id }
    }

    pub fn ids(&self) -> Vec<String> {
        self.values.iter().map(|v| v["ImageId"].as_str().unwrap().to_owned()).collect()
    }

    pub fn config(&self) -> SimConfig {
        SimConfig::new(Catalog::from_values(self.values.clone()).unwrap())
    }

    /// A simulator of this catalog with every image `Normal` but those of
    /// `blocked`: an account on a night.
    pub fn serve_blocking<S: AsRef<str>>(&self, blocked: &[S]) -> SimServer {
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|v| {
                let mut v = v.clone();
                let id = v["ImageId"].as_str().unwrap();
                let status = if blocked.iter().any(|b| b.as_ref() == id) { "Blocked" } else { "Normal" };
                v["AuditStatus"] = serde_json::json!(status);
                v
            })
            .collect();
        SimServer::start(SimConfig::new(Catalog::from_values(values).unwrap()))
    }
}

/// The fixture of the input tests: a simulator with a small generated
/// catalog, and a work directory. Each module wraps it ([`module_bench`])
/// and adds its own steps.
pub struct Bench {
    pub cat: TestCatalog,
    pub server: SimServer,
    pub wd: Workdir,
}

impl Bench {
    /// `images` generated from `seed`.
    pub fn new(images: usize, seed: u64) -> Self {
        Self::with(images, seed, |_| {})
    }

    /// `images` generated from `seed`, the simulator configured by `configure`.
    pub fn with(images: usize, seed: u64, configure: impl FnOnce(&mut SimConfig)) -> Self {
        let cat = TestCatalog::generate(images, seed);
        let mut config = cat.config();
        configure(&mut config);
        Bench { server: SimServer::start(config), wd: Workdir::new(), cat }
    }

    /// The first `n` ids of the catalog.
    pub fn ids(&self, n: usize) -> Vec<String> {
        self.cat.ids()[..n].to_vec()
    }

    /// Exit 2 with every `wants` in the message, and not one call.
    pub fn expect_refused_without_calls(&self, out: &Output, wants: &[&str]) {
        out.expect_code(2);
        for want in wants {
            assert!(out.stderr.contains(want), "expected {want:?} in the message\n{}", out.describe());
        }
        assert_eq!(self.server.stats().requests, 0, "a refused input made calls\n{}", out.describe());
    }

    /// As [`Bench::expect_refused_without_calls`], and no report written in `out`.
    pub fn expect_refused_without_report(&self, out: &Output, wants: &[&str]) {
        self.expect_refused_without_calls(out, wants);
        assert!(!self.wd.path().join("out/images.csv").exists(), "a refused input wrote a report");
    }
}

/// A test module's own `Bench`: the common one of `images` images, which
/// it derefs to, for the module to add its own steps in an `impl Bench`.
macro_rules! module_bench {
    ($images:expr) => {
        struct Bench(crate::common::Bench);

        impl std::ops::Deref for Bench {
            type Target = crate::common::Bench;

            fn deref(&self) -> &crate::common::Bench {
                &self.0
            }
        }

        impl Bench {
            fn new(seed: u64) -> Self {
                Bench(crate::common::Bench::new($images, seed))
            }
        }
    };
}
pub(crate) use module_bench;

/// A scratch directory with its own HOME, so no real credentials leak in.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

/// What a run of the binary did.
pub struct Output {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics, showing everything, unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.describe());
        self
    }

    /// What a finished [`Command::output`] gave.
    pub fn of(cmd: String, out: std::process::Output) -> Self {
        Output {
            cmd,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

impl Workdir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Workdir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Runs the binary with only the given environment (plus PATH and a
    /// scratch HOME).
    pub fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vod-image-audit"));
        cmd.args(args).current_dir(self.path()).env_clear().env("HOME", self.home());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            // A run refused before it reads stdin (a usage error) may have
            // exited and closed the pipe already: that is not the test's failure.
            if let Err(e) = child.stdin.take().unwrap().write_all(input) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the child's stdin: {e}");
            }
        }
        let out = child.wait_with_output().unwrap();
        Output {
            cmd: format!("vod-image-audit {}", args.join(" ")),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The simulator's default key, as environment variables.
pub fn sim_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", sim::DEFAULT_KEY_ID),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", sim::DEFAULT_KEY_SECRET),
    ]
}

/// One invocation of the binary against a simulator, built up flag by flag:
/// `run --input ids.csv --out out --endpoint <simulator>` (see [`Audit::new`])
/// or `check --endpoint <simulator> --image-id <id>` (see [`Audit::check`]),
/// with the simulator's default key in the environment unless
/// [`Audit::credentials`] says otherwise. [`Audit::run`] and
/// [`Audit::spawn`] take `&self`, so one value can run the same command
/// again (a resume).
#[derive(Clone)]
pub struct Audit<'a> {
    wd: &'a Workdir,
    sub: Vec<String>,
    input: Option<String>,
    out: Option<String>,
    endpoint: String,
    args: Vec<String>,
    credentials: Vec<(String, String)>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
}

impl<'a> Audit<'a> {
    /// `run --input ids.csv --out out --endpoint <sim>`, nothing else.
    pub fn new(wd: &'a Workdir, sim: &SimServer) -> Self {
        Audit {
            wd,
            sub: vec!["run".into()],
            input: Some("ids.csv".into()),
            out: Some("out".into()),
            endpoint: sim.url.clone(),
            args: Vec::new(),
            credentials: sim_env().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// `check --endpoint <sim> --image-id <image_id>`.
    pub fn check(wd: &'a Workdir, sim: &SimServer, image_id: &str) -> Self {
        let mut a = Audit::new(wd, sim);
        a.sub = vec!["check".into()];
        a.input = None;
        a.out = None;
        a.args = vec!["--image-id".into(), image_id.into()];
        a
    }

    /// Another subcommand than `run` (`list-images`), with the same flags.
    pub fn subcommand(mut self, name: &str) -> Self {
        self.sub = vec![name.into()];
        self
    }

    /// `--input <path>` (`-`: stdin) instead of `ids.csv`.
    pub fn input(mut self, path: &str) -> Self {
        self.input = Some(path.into());
        self
    }

    /// `--out <dir>` instead of `out`.
    pub fn out(mut self, dir: &str) -> Self {
        self.out = Some(dir.into());
        self
    }

    /// No `--input` flag (a test adds its own, see [`Audit::run_with`]).
    pub fn no_input(mut self) -> Self {
        self.input = None;
        self
    }

    /// No `--out` flag: the binary's default.
    pub fn no_out(mut self) -> Self {
        self.out = None;
        self
    }

    /// `--endpoint <url>` instead of the simulator's.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = url.into();
        self
    }

    /// `--qps <n>`.
    pub fn qps(self, n: u32) -> Self {
        self.arg("--qps").arg(n.to_string())
    }

    /// `--concurrency <n>`.
    pub fn concurrency(self, n: usize) -> Self {
        self.arg("--concurrency").arg(n.to_string())
    }

    /// Any other flag or value, after the ones above.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// One more environment variable (besides the credentials, PATH and HOME).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// These variables instead of the simulator's default key (none: no
    /// credentials in the environment at all).
    pub fn credentials(mut self, vars: &[(&str, &str)]) -> Self {
        self.credentials = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    /// Bytes for the child's stdin (otherwise it gets /dev/null).
    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(bytes.as_ref().to_vec());
        self
    }

    /// The arguments, as the binary gets them.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.sub.clone();
        if let Some(input) = &self.input {
            argv.extend(["--input".into(), input.clone()]);
        }
        if let Some(out) = &self.out {
            argv.extend(["--out".into(), out.clone()]);
        }
        argv.extend(["--endpoint".into(), self.endpoint.clone()]);
        argv.extend(self.args.iter().cloned());
        argv
    }

    fn vars(&self) -> Vec<(&str, &str)> {
        self.credentials.iter().chain(&self.env).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// The command, not yet run: for arguments or variables that are not
    /// text (`Command::arg` and `Command::env` take any `OsStr`).
    pub fn command(&self) -> Command {
        let argv = self.argv();
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.wd.command(&args, &self.vars())
    }

    /// Runs [`Audit::command`] with `extra` done to it, to the end.
    pub fn run_with(&self, what: &str, extra: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.command();
        extra(&mut cmd);
        let argv = self.argv();
        Output::of(format!("{what} vod-image-audit {}", argv.join(" ")), cmd.output().unwrap())
    }

    /// Runs it to the end.
    pub fn run(&self) -> Output {
        let argv = self.argv();
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.wd.run(&args, &self.vars(), self.stdin.as_deref())
    }

    /// Starts it in the background (stdin: /dev/null); see [`Spawned`].
    pub fn spawn(&self, tag: &str) -> Spawned {
        assert!(self.stdin.is_none(), "a spawned run reads no stdin");
        let argv = self.argv();
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.wd.spawn(tag, &args, &self.vars())
    }

    /// Runs it to the end under `bash -c <script>`, the script ending in
    /// `exec "$0" "$@"` (the binary and its arguments); `note` says what the
    /// script changes, for the failure message.
    pub fn run_in_shell(&self, script: &str, note: &str) -> Output {
        assert!(self.stdin.is_none(), "no stdin through the shell");
        let argv = self.argv();
        let mut args = vec!["-c", script, env!("CARGO_BIN_EXE_vod-image-audit")];
        args.extend(argv.iter().map(String::as_str));
        let done = self.wd.command_of("bash", &args, &self.vars()).output().unwrap();
        Output::of(format!("{note} vod-image-audit {}", argv.join(" ")), done)
    }
}

/// Reads a CSV file into header-keyed rows.
pub fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

/// A run of the binary started in the background, its stdout and stderr
/// going to files in the work directory (a pipe nobody reads could block it).
pub struct Spawned {
    pub child: std::process::Child,
    pub cmd: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (without reaping it twice: `wait` still works).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Sends SIGINT with the system's `kill`, as an operator (or cron's
    /// timeout) would.
    pub fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -INT {} failed", self.pid());
    }

    /// SIGKILL: no handler, no cleanup, no report.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the exit, within `limit`, and collects what it printed.
    pub fn wait(mut self, limit: std::time::Duration) -> Output {
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {limit:?}\n--- stderr ---\n{}",
                    self.cmd,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        Output {
            cmd: self.cmd.clone(),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&std::fs::read(&self.stdout).unwrap_or_default()).into_owned(),
            stderr: String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned(),
        }
    }
}

impl Workdir {
    /// The command `run` would execute: only the given environment (plus
    /// PATH and the scratch HOME), in the work directory.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.command_of(env!("CARGO_BIN_EXE_vod-image-audit"), args, env)
    }

    /// Like [`Workdir::command`], for another program (a shell wrapping the
    /// binary, say).
    pub fn command_of(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(self.path()).env_clear().env("HOME", self.home());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the binary in the background; see [`Spawned`]. `tag` names
    /// the files its stdout and stderr go to.
    pub fn spawn(&self, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let stdout = self.path().join(format!("{tag}.stdout"));
        let stderr = self.path().join(format!("{tag}.stderr"));
        let mut cmd = self.command(args, env);
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().unwrap();
        Spawned { child, cmd: format!("vod-image-audit {}", args.join(" ")), stdout, stderr }
    }

    /// Lines of a file, 0 if it does not exist (yet).
    pub fn count_lines(&self, name: &str) -> usize {
        std::fs::read(self.path().join(name)).map(|b| b.iter().filter(|c| **c == b'\n').count()).unwrap_or(0)
    }
}

/// Polls `cond` every few milliseconds until it holds; panics with `what`
/// after `limit`.
pub fn poll_until(limit: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// How many calls the simulator answers with `revoke_key_after = Some(n)`
/// when a client keeps at most `concurrency` calls in flight.
///
/// The simulator (`process` in `src/sim/mod.rs`) first checks
/// `authenticated >= n` (a load), then checks the signature, and only then
/// counts the call (`fetch_add`): check, then increment, not one atomic step.
/// Every counted call is answered (no faults here), so at least `n` are, and
/// none is refused before the `n`-th is counted. Once it is, a call that
/// starts its check later is refused; the only calls counted past `n` are
/// those that passed the check before that and were still between check and
/// count, that is in flight beside the `n`-th call: at most `concurrency - 1`.
pub fn answered_before_revocation(n: u64, concurrency: usize) -> std::ops::RangeInclusive<u64> {
    n..=n + concurrency as u64 - 1
}

/// `n` ids the generated catalogs never hold: the API answers NoSuchResource.
pub fn unknown_ids(n: usize, salt: u32) -> Vec<String> {
    (0..n).map(|i| format!("dead{salt:04x}{i:024x}")).collect()
}

/// An input file of ids with an `ImageId` header.
pub fn id_file(ids: &[String]) -> String {
    let mut s = String::from("ImageId\n");
    for id in ids {
        s.push_str(id);
        s.push('\n');
    }
    s
}

/// Every file under `dir`, hidden ones (the lock, temporaries) included.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

impl SimServer {
    /// Stops this simulator and starts one with `config` at the same address:
    /// the same endpoint, the service restarted (a key rotated, a fault
    /// fixed). The address is the one the system gave the first bind.
    pub fn restart(self, config: SimConfig) -> SimServer {
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        drop(self);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr.as_str())).unwrap();
        let sim = Simulator::new(config);
        let shutdown = CancellationToken::new();
        rt.spawn(sim::serve(listener, sim.clone(), shutdown.clone().cancelled_owned()));
        SimServer { url: format!("http://{addr}/"), sim, shutdown, _rt: rt }
    }
}

/// Rewrites `manifest.sha256` in `dir` to match its `manifest.json` (a test
/// that edits a manifest on purpose and wants only that edit seen).
pub fn reseal_manifest(dir: &Path) {
    let (_, sha) = vod_image_audit::rundir::files::digest_file(&dir.join("manifest.json")).unwrap();
    std::fs::write(dir.join("manifest.sha256"), format!("{sha}  manifest.json\n")).unwrap();
}

/// `s` with the hex digits of each `%XY` in lower case: the percent-encoding
/// a server may echo in place of the upper-case one a request uses.
pub fn lower_hex(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        out.push('%');
        out.push_str(&rest[i + 1..i + 3].to_ascii_lowercase());
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// Where [`echoing_answer`] puts the forms that differ between its users:
/// the URL's query key, and the forms of `ImageType` and the mezzanine's
/// `OriginalFileName`.
pub struct EchoIn<'a> {
    pub url_key: &'a str,
    pub image_type: &'a str,
    pub original_name: &'a str,
}

/// A `GetImageInfo` answer whose every string field echoes a secret in one
/// of its forms (`form(name)`: the raw value, percent-encoded once or twice,
/// base64, ...), as a server that echoes what it was sent would.
pub fn echoing_answer(form: &dyn Fn(&str) -> String, at: EchoIn<'_>) -> String {
    let image = serde_json::json!({
        "ImageId": "img-title",
        "Title": format!("cover {}", form("raw")),
        "Description": form("lower percent once"),
        "Tags": format!("a,{}", form("base64")),
        "CateName": form("base64url unpadded"),
        "URL": format!("https://img.example.com/a.png?{}={}", at.url_key, form("percent once")),
        "StorageLocation": form("percent twice"),
        "AppId": form("lower percent twice"),
        "ImageType": form(at.image_type),
        "AuditStatus": "Normal",
        "Status": "Normal",
        "Mezzanine": {"FileURL": format!("https://oss/x?t={}", form("base64url")), "OriginalFileName": form(at.original_name), "FileSize": 10},
    });
    serde_json::json!({"RequestId": format!("R-{}", form("raw")), "ImageInfo": image}).to_string()
}
