//! Shared helpers of the integration tests: real servers and the real agent
//! binary, each started on a free 127.0.0.1 port and killed on drop.
//!
//! A missing server is a failure with the command that installs it, never a
//! skipped test: `scripts/test.sh` installs everything.

#![allow(dead_code)]

pub mod deploy;
pub mod http;
pub mod receiver;
pub mod servers;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `limit`
/// with `what` in the message.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    wait_for(what, Duration::from_secs(60), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    });
}

/// Whether the tests run as root (CI does).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned; no memory is touched.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The test venv's Python (pymongo and SecantusDB live there).
pub fn venv_python() -> PathBuf {
    let py = venv().join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test-deps.sh (scripts/test.sh does) first",
        py.display()
    );
    py
}

fn venv() -> PathBuf {
    std::env::var_os("MONGOMON_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test"))
}

/// A SecantusDB server (MongoDB-compatible, from PyPI) on loopback.
pub struct Secantus {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Secantus {
    /// A single-node replica set (SecantusDB's default).
    pub fn replset() -> Self {
        Self::start(&[])
    }

    /// A standalone server.
    pub fn standalone() -> Self {
        Self::start(&["--standalone"])
    }

    pub fn start(extra: &[&str]) -> Self {
        Self::start_at(":memory:", extra)
    }

    /// A server on `storage` (a directory, or `:memory:`): a disk store
    /// survives a restart, e.g. to create users, then restart with `--auth`.
    pub fn start_at(storage: &str, extra: &[&str]) -> Self {
        let bin = venv().join("bin/secantusd-py");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/test-deps.sh (or scripts/test.sh) to install SecantusDB",
            bin.display()
        );
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("secantus.log")).expect("log file");
        let mut child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--storage-path",
                storage,
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn secantusd-py");
        wait_port(port, "SecantusDB", &mut child);
        Secantus {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn uri(&self) -> String {
        format!("mongodb://{}", self.addr())
    }

    /// Stops the server with SIGTERM and waits, so that what it wrote to a
    /// disk store (users, data) is there after a restart.
    pub fn stop_gracefully(mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A VictoriaMetrics server (Debian package) on loopback, with its own
/// storage directory so it can be stopped and started again.
pub struct Victoria {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Victoria {
    pub fn start() -> Self {
        let bin = which("victoria-metrics").unwrap_or_else(|| {
            panic!("victoria-metrics is missing: run scripts/test-deps.sh (apt-get install victoria-metrics)")
        });
        Self::start_bin(bin)
    }

    /// VictoriaMetrics 1.150.0, built by scripts/deps/40-victoria-current.sh
    /// from ../shared/third_party (it takes zstd bodies; Debian's does not).
    pub fn start_current() -> Self {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/third_party/victoria-metrics-1.150.0");
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/test-deps.sh (scripts/deps/40-victoria-current.sh builds it)",
            bin.display()
        );
        Self::start_bin(bin)
    }

    fn start_bin(bin: PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut v = Victoria {
            port: free_port(),
            child: None,
            dir,
            bin,
        };
        v.resume();
        v
    }

    /// Starts the server (again) on the same port and storage.
    pub fn resume(&mut self) {
        let bin = self.bin.clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("vm.log"))
            .expect("log file");
        let mut child = Command::new(bin)
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            // Make freshly written samples visible to export at once.
            .arg("-search.latencyOffset=0s")
            .arg("-dedup.minScrapeInterval=0s")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn victoria-metrics");
        wait_port(self.port, "VictoriaMetrics", &mut child);
        wait_for("VictoriaMetrics /health", Duration::from_secs(30), || {
            http::get(self.port, "/health")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ())
        });
        self.child = Some(child);
    }

    /// Stops the server gracefully (SIGTERM), keeping its storage.
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/write", self.port)
    }

    /// Every series matching `selector`, from `/api/v1/export`.
    pub fn export(&self, selector: &str) -> Vec<Series> {
        // Flush in-memory buffers so what was just written is searchable.
        let _ = http::get(self.port, "/internal/force_flush");
        let path = format!("/api/v1/export?match[]={}", http::encode(selector));
        let resp = match http::get(self.port, &path) {
            Ok(r) if r.status == 200 => r,
            _ => return Vec::new(),
        };
        String::from_utf8_lossy(&resp.body)
            .lines()
            .filter_map(|l| serde_json::from_str::<Series>(l).ok())
            .collect()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One series of VictoriaMetrics' export format.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Series {
    pub metric: std::collections::BTreeMap<String, String>,
    pub values: Vec<f64>,
    pub timestamps: Vec<i64>,
}

impl Series {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.metric.get(k).map(String::as_str)
    }

    /// The value with the latest timestamp.
    pub fn last(&self) -> Option<(i64, f64)> {
        self.timestamps
            .iter()
            .zip(&self.values)
            .max_by_key(|(t, _)| **t)
            .map(|(t, v)| (*t, *v))
    }

    /// (timestamp, value) pairs in time order.
    pub fn points(&self) -> Vec<(i64, f64)> {
        let mut p: Vec<(i64, f64)> = self
            .timestamps
            .iter()
            .copied()
            .zip(self.values.iter().copied())
            .collect();
        p.sort_by_key(|x| x.0);
        p
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The real `mongomon` binary running `run` with a config file.
pub struct Agent {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `mongomon run` with `config` (TOML) written to a file.
    pub fn start(config: &str) -> Self {
        Self::start_with(config, &[])
    }

    /// Like [`Agent::start`], with extra arguments after `run`. As root (CI)
    /// `--allow-root` is added: `run` refuses uid 0 otherwise.
    pub fn start_with(config: &str, extra: &[&str]) -> Self {
        Self::launch(config, extra, None, None)
    }

    /// Like [`Agent::start`], with environment variables of its own (the
    /// proxy variables are cleared first, so only these count) and,
    /// optionally, a file-size limit (RLIMIT_FSIZE: writes past it fail
    /// with EFBIG, as on a full disk).
    pub fn start_env(config: &str, env: &[(&str, String)], fsize_limit: Option<u64>) -> Self {
        Self::launch(config, &[], Some(env), fsize_limit)
    }

    fn launch(
        config: &str,
        extra: &[&str],
        env: Option<&[(&str, String)]>,
        fsize_limit: Option<u64>,
    ) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mongomon.toml");
        std::fs::write(&path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongomon"));
        // Each agent gets its own spool, unless the test chose one.
        if !config.contains("spool_dir") {
            cmd.env("MONGOMON_AGENT__SPOOL_DIR", dir.path().join("spool"));
        }
        if let Some(env) = env {
            for k in [
                "https_proxy",
                "HTTPS_PROXY",
                "http_proxy",
                "HTTP_PROXY",
                "no_proxy",
                "NO_PROXY",
            ] {
                cmd.env_remove(k);
            }
            for (k, v) in env {
                cmd.env(k, v);
            }
        }
        if let Some(limit) = fsize_limit {
            // SAFETY: setrlimit in the child between fork and exec; no allocation.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .args(["run", "-v"])
            .args(if is_root() {
                &["--allow-root"][..]
            } else {
                &[]
            })
            .args(extra)
            .arg("--config")
            .arg(&path)
            .env_remove("MONGOMON_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn mongomon");
        Agent {
            child: Some(child),
            dir,
        }
    }

    /// Wraps an agent process a test started itself (custom environment);
    /// `dir` must hold its `agent.log`.
    pub fn adopt(child: Child, dir: tempfile::TempDir) -> Self {
        Agent {
            child: Some(child),
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("mongomon.toml")
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits for an agent the test killed (SIGKILL) to be reaped.
    pub fn stop_killed(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits (up to `limit`) for the exit status.
    pub fn stop(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        signal(child.id(), libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                panic!(
                    "agent did not exit within {limit:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the binary to completion (for `check`, `config`, bad input).
pub fn mongomon(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongomon"));
    cmd.args(args)
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mongomon")
}

/// Reads serverStatus straight from a server with the official driver, to
/// compare with what the agent shipped.
pub fn server_status(uri: &str) -> bson::Document {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(format!("{uri}/?directConnection=true"))
            .await
            .expect("client");
        client
            .database("admin")
            .run_command(bson::doc! {"serverStatus": 1})
            .await
            .expect("serverStatus")
    })
}

/// Inserts `n` documents into `test.c`, to move opcounters.
pub fn insert_docs(uri: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(format!("{uri}/?directConnection=true"))
            .await
            .expect("client");
        let coll = client.database("test").collection::<bson::Document>("c");
        for i in 0..n {
            coll.insert_one(bson::doc! {"i": i as i64})
                .await
                .expect("insert");
        }
    })
}

/// Like [`mongomon`], killing the process if it runs past `limit`.
pub fn mongomon_timeout(args: &[&str], limit: Duration) -> std::process::Output {
    mongomon_timeout_env(args, &[], limit)
}

/// Like [`mongomon_timeout`], with extra environment variables.
pub fn mongomon_timeout_env(
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mongomon"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("MONGOMON_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mongomon");
    // The pipes are read while the process runs: one that writes more than
    // a pipe holds (a demo drawing its table every second) would otherwise
    // block on a full pipe and never exit.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(limit) {
        Ok(o) => o,
        Err(_) => {
            signal(pid, libc::SIGKILL);
            rx.recv().expect("the waiting thread answers")
        }
    };
    output.expect("output")
}

/// The hosts the simulator is really serving (alive, not removed).
pub fn live_hosts(sim: &mongomon::sim::SimHandle) -> std::collections::BTreeSet<String> {
    sim.hosts()
        .into_iter()
        .filter(|h| h.up && h.role != "removed")
        .map(|h| h.addr.to_string())
        .collect()
}

/// The files of `dir` (under the project root) whose name ends in `.ext`,
/// sorted; a missing folder fails the test.
pub fn project_files(dir: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// The batches a spool directory holds unacknowledged, read from a copy so
/// the original stays exactly as it is (a crash's leftovers, say).
pub fn spooled_batches(dir: &Path) -> std::collections::BTreeSet<String> {
    use mongomon::actors::uploader::spool::Spool;
    use mongomon::config::{FsyncPolicy, FullPolicy, SpoolSettings};
    let copy = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(dir).expect("spool dir").flatten() {
        if e.file_name() != "LOCK" && e.path().is_file() {
            std::fs::copy(e.path(), copy.path().join(e.file_name())).expect("copy");
        }
    }
    let (_, replay) = Spool::open(SpoolSettings {
        dir: copy.path().to_path_buf(),
        max_bytes: 1 << 30,
        segment_bytes: 16 << 20,
        fsync: FsyncPolicy::Never,
        on_full: FullPolicy::DropOldest,
    })
    .expect("the spool opens");
    replay.batches.into_iter().map(|(b, _)| b.id).collect()
}

/// The etcdctl calls that turn etcd's auth on: a root user, and a
/// `mongomon` user whose role may read and write `/mongomon/`.
pub fn etcd_auth_steps(root_pw: &str, agent_pw: &str) -> Vec<Vec<String>> {
    [
        vec!["user", "add", format!("root:{root_pw}").as_str()],
        vec!["user", "grant-role", "root", "root"],
        vec!["role", "add", "agents"],
        vec![
            "role",
            "grant-permission",
            "agents",
            "--prefix=true",
            "readwrite",
            "/mongomon/",
        ],
        vec!["user", "add", format!("mongomon:{agent_pw}").as_str()],
        vec!["user", "grant-role", "mongomon", "agents"],
        vec!["auth", "enable"],
    ]
    .iter()
    .map(|step| step.iter().map(|s| s.to_string()).collect())
    .collect()
}
