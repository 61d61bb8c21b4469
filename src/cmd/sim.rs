//! `mongomon sim`: simulated hosts from a topology file, until a signal.

use std::process::ExitCode;

/// `mongomon sim`: serves the topology until a signal (or the duration).
pub fn command(
    path: &std::path::Path,
    duration: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    let topology = crate::sim::Topology::from_file(path)?;
    let handle = crate::sim::Simulator::start(topology)?;
    if let Some(ctl) = handle.control_addr() {
        println!("control endpoint: http://{ctl}/hosts (POST /action for faults)");
    }
    let hosts = handle.hosts();
    for h in hosts.iter().take(100) {
        println!(
            "{:<22} {:<10} {:<12} {}",
            h.addr,
            h.role,
            h.set.as_deref().unwrap_or("-"),
            h.version
        );
    }
    if hosts.len() > 100 {
        println!("... and {} more", hosts.len() - 100);
    }
    println!("serving {} simulated hosts", hosts.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let limit = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = limit => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    handle.shutdown();
    Ok(ExitCode::SUCCESS)
}
