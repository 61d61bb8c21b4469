//! `Fleet`: this agent's membership in a fleet (`[fleet]`), on etcd.
//!
//! It registers the agent under a lease and renews it every third of the
//! TTL, watches the fleet's keys, campaigns for the leadership when nobody
//! holds it, and tells the supervisor two things: whether this agent leads
//! ([`Leadership`]: then the supervisor runs Discovery and hands its host
//! set back as [`PublishHosts`]), and which hosts are its share
//! ([`OwnedHosts`]: the supervisor starts and stops monitors to match).
//!
//! When the lease cannot be renewed for a whole TTL, counted from the last
//! renewal that succeeded as it was *sent*, the agent stops at once: the
//! [`crate::fleet::FleetGate`] closes (monitors skip their rounds), its share
//! becomes empty and it gives up the leadership; before etcd can expire the
//! lease and hand the hosts to others. It rejoins when etcd answers again.

mod actor;

use actix::Message;

use crate::fleet::PublishedHost;

pub use actor::{Fleet, FleetLinks};

/// The hosts this agent samples now (the whole share, not a change).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct OwnedHosts(pub Vec<PublishedHost>);

/// This agent became the fleet's leader (run Discovery, carrying on from
/// `published`) or stopped being it (stop Discovery).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Leadership {
    pub leader: bool,
    /// The host set in etcd when the leadership began.
    pub published: Vec<PublishedHost>,
}

/// The leader's Discovery found this host set: publish it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PublishHosts(pub Vec<PublishedHost>);

/// Leave the fleet (shutdown): revoke the lease so that the others take
/// this agent's hosts at once instead of after the TTL.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveFleet;
