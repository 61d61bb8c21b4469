//! More real servers for the delivery tests, all from Debian and installed
//! by `scripts/deps/20-delivery.sh`: Prometheus (remote-write receiver),
//! InfluxDB 1.x, tinyproxy (forward proxy), nginx (TLS in front of another
//! server) and a throw-away CA made with openssl. Each listens on
//! 127.0.0.1 only and is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, http, wait_for, wait_port};

fn bin(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/test-deps.sh (apt-get install {package})")
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Prometheus 2.x with its remote-write receiver on.
pub struct Prometheus {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(
            dir,
            "global:\n  scrape_interval: 1m\n",
            &["--web.enable-remote-write-receiver"],
        )
    }

    fn start_in(dir: tempfile::TempDir, yml: &str, extra: &[&str]) -> Self {
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(&conf, yml).expect("config");
        let port = free_port();
        let mut child = spawn(
            Command::new(bin("prometheus", "prometheus"))
                .arg(format!("--config.file={}", conf.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args(extra),
            &dir.path().join("prometheus.log"),
        );
        wait_port(port, "Prometheus", &mut child);
        wait_for("Prometheus ready", Duration::from_secs(60), || {
            http::get(port, "/-/ready")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ())
        });
        Prometheus {
            port,
            child: Some(child),
            _dir: dir,
        }
    }

    /// Prometheus scraping `/metrics` at `target` (`host:port`) every
    /// second, with `authorization` (a bearer token file) when given.
    pub fn scraping(target: &str, token_file: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = token_file
            .map(|f| {
                format!(
                    "    authorization:\n      credentials_file: {}\n",
                    f.display()
                )
            })
            .unwrap_or_default();
        let yml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: mongomon\n{auth}    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        Self::start_in(dir, &yml, &[])
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// An instant query's result vector.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", http::encode(promql));
        http::get(self.port, &path)
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// InfluxDB 1.x with one database, `mongomon`.
pub struct Influx {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Influx {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (port, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        let conf = format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\ndir = \"{d}/meta\"\n\
             [data]\ndir = \"{d}/data\"\nwal-dir = \"{d}/wal\"\n\
             [http]\nenabled = true\nbind-address = \"127.0.0.1:{port}\"\nlog-enabled = false\n\
             [monitor]\nstore-enabled = false\n"
        );
        let path = dir.path().join("influxdb.conf");
        std::fs::write(&path, conf).expect("config");
        let mut child = spawn(
            Command::new(bin("influxd", "influxdb"))
                .arg("-config")
                .arg(&path),
            &dir.path().join("influxd.log"),
        );
        wait_port(port, "InfluxDB", &mut child);
        wait_for("InfluxDB database created", Duration::from_secs(30), || {
            http::request(port, "POST", "/query?q=CREATE%20DATABASE%20mongomon", b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|_| ())
        });
        Influx {
            port,
            child: Some(child),
            _dir: dir,
        }
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/write?db=mongomon", self.port)
    }

    /// The `series` of an InfluxQL query's first result.
    pub fn query(&self, influxql: &str) -> Vec<serde_json::Value> {
        let path = format!("/query?db=mongomon&epoch=ms&q={}", http::encode(influxql));
        http::get(self.port, &path)
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .and_then(|v| v["results"][0]["series"].as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// tinyproxy as a forward proxy allowing CONNECT to `connect_ports`,
/// optionally with basic authentication.
pub struct Tinyproxy {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    pub fn start(connect_ports: &[u16], auth: Option<(&str, &str)>) -> Self {
        Self::start_at(free_port(), connect_ports, auth)
    }

    /// On a port chosen beforehand (a proxy that comes up late).
    pub fn start_at(port: u16, connect_ports: &[u16], auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\nAllow 127.0.0.1\n\
             LogLevel Connect\nLogFile \"{}\"\nPidFile \"{}\"\n",
            dir.path().join("tinyproxy.log").display(),
            dir.path().join("tinyproxy.pid").display()
        );
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((u, p)) = auth {
            conf.push_str(&format!("BasicAuth {u} {p}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).expect("config");
        let mut child = spawn(
            Command::new(bin("tinyproxy", "tinyproxy"))
                .arg("-d")
                .arg("-c")
                .arg(&path),
            &dir.path().join("stdout.log"),
        );
        wait_port(port, "tinyproxy", &mut child);
        Tinyproxy {
            port,
            child: Some(child),
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What tinyproxy logged (one line per connection and CONNECT).
    pub fn log(&self) -> String {
        let a = std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default();
        let b = std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
        a + &b
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with
/// the openssl command line.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(bin("openssl", "openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<name>.key` and `<name>.pem`, signed by the CA in `d` with `ext`.
fn issue(d: &Path, name: &str, subject: &str, ext: &str) {
    issue_for(d, name, subject, ext, "2")
}

/// [`issue`], valid for `days` (`"0"`: it expires the second it is made).
fn issue_for(d: &Path, name: &str, subject: &str, ext: &str, days: &str) {
    let (key, csr, pem, cnf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.cnf"),
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    std::fs::write(d.join(&cnf), ext).expect("extensions file");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            days,
            "-extfile",
            &cnf,
        ],
    );
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj"]);
        let subj = format!("/CN={name}");
        ca.push(&subj);
        ca.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &ca);
        issue(
            d,
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        // A client certificate, for receivers that ask for one.
        issue(
            d,
            "client",
            "/CN=mongomon-agent",
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        );
        TestCa { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `(certificate, key)` of the server certificate (localhost, 127.0.0.1).
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }

    /// Another server certificate of this CA: for `san` (an openssl
    /// subjectAltName value), valid for `days` ("0": already expired a
    /// second later).
    pub fn server_for(&self, name: &str, san: &str, days: &str) -> (PathBuf, PathBuf) {
        issue_for(
            self.dir.path(),
            name,
            "/CN=mongomon-test-server",
            &format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
            days,
        );
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }

    /// The client certificate and its key in one PEM file, the way
    /// MongoDB's `tlsCertificateKeyFile` wants them.
    pub fn client_bundle(&self) -> PathBuf {
        let (cert, key) = self.client();
        let mut both = std::fs::read(cert).expect("client.pem");
        both.extend(std::fs::read(key).expect("client.key"));
        let path = self.dir.path().join("client-bundle.pem");
        std::fs::write(&path, both).expect("bundle");
        path
    }

    /// Another certificate of this CA, `<name>.pem` and `<name>.key`, for
    /// `subject` with the openssl extensions `ext`.
    pub fn issue(&self, name: &str, subject: &str, ext: &str) -> (PathBuf, PathBuf) {
        issue(self.dir.path(), name, subject, ext);
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }

    /// `(certificate, key)` of a client signed by this CA.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("client.pem"),
            self.dir.path().join("client.key"),
        )
    }
}

/// nginx terminating TLS on 127.0.0.1 and passing requests to a plain
/// HTTP server on `upstream`.
pub struct TlsFront {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl TlsFront {
    pub fn start(ca: &TestCa, upstream: u16) -> Self {
        Self::start_with(ca, upstream, false)
    }

    /// With `verify_clients`, a TLS client certificate signed by `ca` is
    /// required, and the access log records the verification result.
    pub fn start_with(ca: &TestCa, upstream: u16, verify_clients: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let certs = ca.dir.path().display();
        let client = if verify_clients {
            format!("    ssl_client_certificate {certs}/ca.pem;\n    ssl_verify_client on;\n")
        } else {
            String::new()
        };
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  log_format v '$request $status client_verify=$ssl_client_verify';\n  access_log {d}/access.log v;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               client_max_body_size 64m;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {certs}/server.pem;\n    ssl_certificate_key {certs}/server.key;\n{client}\
                 location / {{ proxy_pass http://127.0.0.1:{upstream}; proxy_http_version 1.1; }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("config");
        let mut child = spawn(
            Command::new(bin("nginx", "nginx-light"))
                .arg("-c")
                .arg(&path)
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log")),
            &dir.path().join("stdout.log"),
        );
        wait_port(port, "nginx", &mut child);
        TlsFront {
            port,
            child: Some(child),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
