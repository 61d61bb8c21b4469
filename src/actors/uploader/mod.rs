//! `Uploader`: one per upload target; delivers that target's batches,
//! health first and oldest first, with retries.
//!
//! Up to `upload.max_in_flight` batches are sent at once; each stays in the
//! shared [`queue::SharedQueue`] (and in its [`spool`] on disk) until the
//! receiver answers 2xx, so a crash of this actor, a restart by the
//! supervisor or a `kill -9` of the agent loses nothing. Failed attempts are
//! classified and scheduled by [`retry`]; batches the receiver refuses for
//! good (4xx other than 408/429) go to the dead-letter file and are
//! counted. [`connect`] reaches the receiver, through a proxy when one is
//! configured. Every target has its own queue, spool, backoff and actor, so
//! a slow receiver never delays another.

mod actor;
pub mod connect;
pub mod queue;
pub mod retry;
pub mod spool;

use actix::Message;

use crate::config::UploadSettings;

pub use actor::{probe, Uploader};

/// A batch was added to the queue; send it when idle.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BatchQueued;

/// Use new upload settings for the next attempt.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplySettings(pub UploadSettings);

/// The agent is shutting down: retry sooner, give up nothing yet.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BeginDrain;

/// Whether the queue is empty and nothing is in flight.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsIdle;

/// Stop; not a failure, so not restarted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopUploading;
