//! Signals become messages: SIGTERM and SIGINT ask the supervisor to shut
//! down, SIGHUP to reload. Nothing is done inside a signal handler.

use actix::Addr;
use slog::{error, Logger};
use tokio::signal::unix::{signal, SignalKind};

use crate::actors::supervisor::{Reload, Shutdown, Supervisor};

/// Listens for signals on the current System and forwards them.
pub fn install(supervisor: Addr<Supervisor>, log: Logger) {
    actix_rt::spawn(async move {
        let (term, int, hup) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        );
        let (mut term, mut int, mut hup) = match (term, int, hup) {
            (Ok(t), Ok(i), Ok(h)) => (t, i, h),
            _ => {
                error!(
                    log,
                    "Cannot install signal handlers; stop the agent with SIGKILL."
                );
                return;
            }
        };
        loop {
            tokio::select! {
                _ = term.recv() => supervisor.do_send(Shutdown),
                _ = int.recv() => supervisor.do_send(Shutdown),
                _ = hup.recv() => supervisor.do_send(Reload),
            }
        }
    });
}
