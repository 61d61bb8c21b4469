//! A throw-away etcd cluster on loopback ports, for `bench --fleet-agents`
//! and the fleet tests: Debian's etcd (`apt-get install etcd-server`),
//! `n` members, each on its own data directory under the given one, so
//! that a member can be stopped and started again. Killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    members: Vec<Member>,
    dir: PathBuf,
    token: String,
    /// TLS on the client URLs: (CA, server certificate, key).
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// Where Debian installs etcd.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdCluster {
    /// Starts `n` members with their data under `dir` and waits until the
    /// cluster has a leader.
    pub fn start(n: usize, dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(n, dir, None)
    }

    /// Like [`EtcdCluster::start`], with HTTPS client URLs that require a
    /// client certificate signed by `ca` (`tls`: CA, certificate, key).
    pub fn start_with(
        n: usize,
        dir: &Path,
        tls: Option<(PathBuf, PathBuf, PathBuf)>,
    ) -> anyhow::Result<Self> {
        if !Path::new(ETCD_BIN).is_file() {
            bail!("{ETCD_BIN} is missing: apt-get install etcd-server etcd-client (scripts/test-deps.sh does)");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut members = Vec::new();
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client: free_port()?,
                peer: free_port()?,
                child: None,
            });
        }
        let token = format!("mongomon-{}-{}", std::process::id(), members[0].client);
        let mut c = EtcdCluster {
            members,
            dir: dir.to_path_buf(),
            token,
            tls,
        };
        for i in 0..n {
            c.spawn(i, "new")?;
        }
        c.wait_healthy(&(0..n).collect::<Vec<_>>(), Duration::from_secs(30))?;
        Ok(c)
    }

    fn spawn(&mut self, i: usize, state: &str) -> anyhow::Result<()> {
        let initial = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", m.name)))?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let mut cmd = Command::new(ETCD_BIN);
        if let Some((ca, cert, key)) = &self.tls {
            cmd.arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            // etcd's defaults, written out: shorter elections make a busy
            // machine elect leaders for nothing, and each new leader
            // extends every lease by its TTL.
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start etcd")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// `http(s)://127.0.0.1:port` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.members
            .iter()
            .map(|m| format!("{scheme}://127.0.0.1:{}", m.client))
            .collect()
    }

    /// The endpoints as a TOML array.
    pub fn endpoints_toml(&self) -> String {
        let quoted: Vec<String> = self
            .endpoints()
            .iter()
            .map(|e| format!("\"{e}\""))
            .collect();
        format!("[{}]", quoted.join(", "))
    }

    /// Whether member `i` answers `/health` with a leader (with TLS on:
    /// whether it accepts connections).
    pub fn healthy(&self, i: usize) -> bool {
        if self.tls.is_some() {
            return TcpStream::connect(("127.0.0.1", self.members[i].client)).is_ok();
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.members[i].client));
        matches!(
            super::loopback_http(addr, "/health", None, Duration::from_secs(2)),
            Ok((200, body)) if body.contains("\"true\"")
        )
    }

    /// The member leading the cluster now, as the running members say
    /// (`/v3/maintenance/status`: its own id and the leader's); plain HTTP
    /// only.
    pub fn leader(&self) -> Option<usize> {
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], m.client));
            let Ok((_, out)) = super::loopback_http(
                addr,
                "/v3/maintenance/status",
                Some("{}"),
                Duration::from_secs(2),
            ) else {
                continue;
            };
            // The JSON object, whether or not the body came in chunks.
            let (Some(a), Some(b)) = (out.find('{'), out.rfind('}')) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&out[a..=b]) else {
                continue;
            };
            let (me, leader) = (&v["header"]["member_id"], &v["leader"]);
            if leader.is_null() || leader == "0" {
                continue;
            }
            if me == leader {
                return Some(i);
            }
        }
        None
    }

    /// Waits until each of `members` reports a leader.
    pub fn wait_healthy(&self, members: &[usize], limit: Duration) -> anyhow::Result<()> {
        let t0 = Instant::now();
        while !members.iter().all(|&i| self.healthy(i)) {
            if t0.elapsed() > limit {
                bail!(
                    "etcd members {members:?} not healthy within {limit:?}; logs in {}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops member `i` (SIGKILL: as a crash or a lost machine).
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.members[i].child.is_some() {
            bail!("etcd member {i} still runs");
        }
        self.spawn(i, "existing")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
