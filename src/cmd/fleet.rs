//! `mongomon fleet status`: what etcd says of this configuration's fleet:
//! each agent with its lease's time left and its share of the hosts, and
//! the leader. Also the etcd line of `mongomon check`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::anyhow;
use serde::Serialize;

use crate::config::FleetSettings;
use crate::fleet::etcd::{Etcd, EtcdError, EtcdOptions};
use crate::fleet::{shares, Keys, MemberInfo};

/// One agent of the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct AgentLine {
    pub agent_id: String,
    pub leader: bool,
    /// Seconds its lease has left (-1: unknown).
    pub lease_ttl_left_secs: i64,
    pub hosts_owned: usize,
    pub weight: f64,
    pub pid: u32,
}

/// The fleet as etcd has it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub fleet: String,
    pub etcd_endpoint: String,
    pub etcd_version: String,
    pub leader: Option<String>,
    pub hosts_published: usize,
    pub agents: Vec<AgentLine>,
}

/// The etcd client for `[fleet]`.
pub fn client(f: &FleetSettings) -> anyhow::Result<Etcd> {
    let tls = match &f.tls {
        Some(t) => Some(
            crate::actors::uploader::connect::tls_config(t)
                .map_err(|e| anyhow!("fleet TLS settings: {e}"))?,
        ),
        None => None,
    };
    Ok(Etcd::new(EtcdOptions {
        endpoints: f.endpoints.clone(),
        tls,
        credentials: f.credentials.clone(),
        timeout: f.call_timeout().max(std::time::Duration::from_secs(2)),
    }))
}

/// Reads the fleet's keys and the agents' leases.
pub async fn report(f: &FleetSettings, etcd: &Etcd) -> Result<FleetReport, EtcdError> {
    let version = etcd.status().await?;
    let keys = Keys::new(&f.name);
    let (_, kvs) = etcd.range_prefix(&keys.root).await?;
    let mut members: BTreeMap<String, (MemberInfo, i64)> = BTreeMap::new();
    let mut leader = None;
    let mut hosts = Vec::new();
    for kv in kvs {
        let Some(rest) = kv.key.strip_prefix(keys.root.as_str()) else {
            continue;
        };
        if let Some(id) = rest.strip_prefix("agents/") {
            let info = serde_json::from_slice(&kv.value).unwrap_or(MemberInfo {
                agent_id: id.to_string(),
                weight: 1.0,
                pid: 0,
                started_unix: 0,
            });
            members.insert(id.to_string(), (info, kv.lease));
        } else if rest == "leader" {
            leader = Some(String::from_utf8_lossy(&kv.value).into_owned());
        } else if let Some(addr) = rest.strip_prefix("hosts/") {
            hosts.push(addr.to_string());
        }
    }
    let weights: BTreeMap<String, f64> = members
        .iter()
        .map(|(id, (m, _))| (id.clone(), m.weight))
        .collect();
    let owned = shares(&hosts, &weights);
    let mut agents = Vec::new();
    for (id, (m, lease)) in members {
        let ttl = if lease != 0 {
            etcd.time_to_live(lease).await.unwrap_or(-1)
        } else {
            -1
        };
        agents.push(AgentLine {
            leader: leader.as_deref() == Some(id.as_str()),
            lease_ttl_left_secs: ttl,
            hosts_owned: owned.get(&id).copied().unwrap_or(0),
            weight: m.weight,
            pid: m.pid,
            agent_id: id,
        });
    }
    Ok(FleetReport {
        fleet: f.name.clone(),
        etcd_endpoint: etcd.current_endpoint(),
        etcd_version: version,
        leader,
        hosts_published: hosts.len(),
        agents,
    })
}

pub fn render(r: &FleetReport) -> String {
    let mut out = format!(
        "fleet \"{}\" on etcd {} ({}): {} agents, {} hosts published, leader: {}\n",
        r.fleet,
        r.etcd_endpoint,
        r.etcd_version,
        r.agents.len(),
        r.hosts_published,
        r.leader.as_deref().unwrap_or("none")
    );
    let width = r
        .agents
        .iter()
        .map(|a| a.agent_id.len())
        .max()
        .unwrap_or(0)
        .max(8);
    out.push_str(&format!(
        "{:<width$}  LEADER  LEASE_LEFT  HOSTS  WEIGHT  PID\n",
        "AGENT"
    ));
    for a in &r.agents {
        let lease = if a.lease_ttl_left_secs >= 0 {
            format!("{}s", a.lease_ttl_left_secs)
        } else {
            "?".into()
        };
        out.push_str(&format!(
            "{:<width$}  {:<6}  {:<10}  {:<5}  {:<6}  {}\n",
            a.agent_id,
            if a.leader { "yes" } else { "" },
            lease,
            a.hosts_owned,
            a.weight,
            a.pid
        ));
    }
    out
}

/// `mongomon fleet status`: exit 0 with a leader and at least one agent,
/// 1 when the fleet has none of either, 2 when etcd cannot be reached.
pub fn status(cfg: &crate::cli::ConfigArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (raw, _) = super::load(cfg)?;
    let settings = crate::config::validate(&raw, Some(&cfg.config))?;
    let Some(f) = settings.fleet else {
        return Err(anyhow!(
            "{} has no [fleet] section; fleet status needs fleet.etcd_endpoints",
            cfg.config.display()
        ));
    };
    let sys = actix_rt::System::new();
    let result = sys.block_on(async move {
        let etcd = client(&f)?;
        report(&f, &etcd).await.map_err(anyhow::Error::from)
    });
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render(&r));
            }
            Ok(if r.leader.is_some() && !r.agents.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            eprintln!("mongomon: {}", crate::redact::printable(&format!("{e:#}")));
            Ok(ExitCode::from(2))
        }
    }
}
