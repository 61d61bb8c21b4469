//! The agent's HTTP listener (`[http]`): `/metrics` for Prometheus,
//! `/healthz`, `/readyz` and `/status` for operators and `mongomon status`.
//!
//! - [`view`]: [`AgentView`], each host's latest round, kept by the
//!   batchers and read by the listener without holding up sampling.
//! - [`status`]: the `/status` document, shared with `mongomon status`.
//! - [`server`]: actix-web on a thread of its own (its own System and one
//!   worker), so that rendering a large scrape never runs on a thread that
//!   samples hosts; authentication, limits and the handlers.

pub mod server;
pub mod status;
pub mod view;

pub use server::start;
pub use view::{AgentView, HostSnapshot, TargetView};
