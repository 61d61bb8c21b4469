//! The MongoDB wire protocol, written once for both ends: the agent's
//! connection ([`crate::mongo`]) and the simulator ([`crate::sim`]).
//!
//! - [`frame`]: message headers, OP_MSG, OP_QUERY/OP_REPLY, OP_COMPRESSED,
//!   checksums; requests and replies in both directions.
//! - [`compress`]: snappy, zlib and zstd by their wire ids.
//! - [`raw`]: raw BSON read element by element, for the check of every
//!   reply on arrival and the flattening into metrics.
//! - [`scram`]: SCRAM-SHA-1 and SCRAM-SHA-256, the client's and the
//!   server's half of the conversation.

pub mod compress;
pub mod frame;
pub mod raw;
pub mod scram;
