//! What a monitor produces: one [`Sample`] per command reply or host status,
//! each carrying the labels of the host it describes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bson::Document;

/// The role a host plays, as its `hello` reply tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Standalone,
    Primary,
    Secondary,
    Arbiter,
    Hidden,
    Mongos,
    ConfigSvr,
    /// A replica-set member in another state (STARTUP2, RECOVERING, ...).
    Other,
    /// Not yet known: the host has not answered.
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Arbiter => "arbiter",
            Role::Hidden => "hidden",
            Role::Mongos => "mongos",
            Role::ConfigSvr => "configsvr",
            Role::Other => "other",
            Role::Unknown => "unknown",
        }
    }

    /// Reads the role from a `hello`/`isMaster` reply.
    pub fn from_hello(hello: &Document) -> Role {
        let flag = |k: &str| hello.get_bool(k).unwrap_or(false);
        if hello.get_str("msg").ok() == Some("isdbgrid") {
            return Role::Mongos;
        }
        if hello.get_str("setName").is_err() {
            return Role::Standalone;
        }
        if flag("arbiterOnly") {
            Role::Arbiter
        } else if flag("hidden") {
            Role::Hidden
        } else if hello.contains_key("configsvr")
            && (flag("ismaster") || flag("isWritablePrimary") || flag("secondary"))
        {
            Role::ConfigSvr
        } else if flag("isWritablePrimary") || flag("ismaster") {
            Role::Primary
        } else if flag("secondary") {
            Role::Secondary
        } else {
            Role::Other
        }
    }
}

/// Labels attached to every sample of one host. Shared by `Arc` because a
/// monitor emits several samples per round with the same labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// `host:port` as configured or discovered.
    pub host: String,
    /// The target's name.
    pub cluster: String,
    /// The replica set the host belongs to, if any.
    pub replset: Option<String>,
    /// The shard the host belongs to, for shard members.
    pub shard: Option<String>,
    pub role: Role,
    /// The server version, once known.
    pub version: Option<String>,
}

/// Why a host's round failed, reduced to a stable kind for metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `timeout`, `unreachable`, `auth`, `command`, `network`, `other`.
    pub kind: &'static str,
    /// The command that failed.
    pub command: &'static str,
    /// The error's text, one line, without credentials.
    pub message: String,
}

/// The payload of a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A monitoring command's whole reply, as the server sent it (raw
    /// BSON, validated on arrival).
    Reply {
        command: &'static str,
        doc: bson::RawDocumentBuf,
    },
    /// Whether the host answered every command of this round.
    Status { up: bool, failure: Option<Failure> },
    /// The agent's own counters (see [`crate::stats`]); with `upload`, the
    /// counters of that upload target.
    Agent {
        metrics: Vec<(&'static str, u64)>,
        upload: Option<String>,
    },
    /// Metrics the agent derives from replies (oplog window, mongos view,
    /// dbStats rounds), under the measurement `mongodb_<name>`.
    Derived {
        name: &'static str,
        tags: Vec<(&'static str, String)>,
        fields: Vec<(&'static str, crate::format::flatten::Number)>,
    },
}

/// One collected observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Arc<Labels>,
    /// When the command was sent (or the round started, for status).
    pub time: SystemTime,
    /// How long the command (or the round) took.
    pub duration: Duration,
    pub body: Body,
}

impl Sample {
    /// Nanoseconds since the Unix epoch, as line protocol wants them.
    pub fn unix_nanos(&self) -> i128 {
        self.time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        (self.unix_nanos() / 1_000_000) as i64
    }

    /// The name this sample goes by in the JSON format and in logs.
    /// Health samples (is the host up, replica-set state and lag, the
    /// agent's own counters) are sent before bulk ones after an outage.
    pub fn is_health(&self) -> bool {
        matches!(
            &self.body,
            Body::Status { .. }
                | Body::Agent { .. }
                | Body::Reply {
                    command: "replSetGetStatus",
                    ..
                }
        )
    }

    pub fn command(&self) -> &'static str {
        match &self.body {
            Body::Reply { command, .. } => command,
            Body::Status { .. } => "status",
            Body::Agent { .. } => "agent",
            Body::Derived { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn roles_from_hello() {
        assert_eq!(Role::from_hello(&doc! {"ismaster": true}), Role::Standalone);
        assert_eq!(Role::from_hello(&doc! {"msg": "isdbgrid"}), Role::Mongos);
        assert_eq!(
            Role::from_hello(&doc! {"setName": "rs", "isWritablePrimary": true}),
            Role::Primary
        );
        assert_eq!(
            Role::from_hello(&doc! {"setName": "rs", "secondary": true}),
            Role::Secondary
        );
        assert_eq!(
            Role::from_hello(&doc! {"setName": "rs", "secondary": true, "hidden": true}),
            Role::Hidden
        );
        assert_eq!(
            Role::from_hello(&doc! {"setName": "rs", "arbiterOnly": true}),
            Role::Arbiter
        );
        assert_eq!(
            Role::from_hello(&doc! {"setName": "cfg", "ismaster": true, "configsvr": 2}),
            Role::ConfigSvr
        );
        assert_eq!(Role::from_hello(&doc! {"setName": "rs"}), Role::Other);
    }
}
