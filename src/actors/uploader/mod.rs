//! `Uploader`: delivers batches to the receiver, oldest first, with retries.
//!
//! One batch is in flight at a time; it stays at the head of the shared
//! [`queue::SharedQueue`] until the receiver answers 2xx, so a crash of this
//! actor (or a restart by the supervisor) loses nothing. Failed attempts are
//! classified and scheduled by [`retry`]; batches the receiver refuses for
//! good (4xx other than 408/429) are logged, counted and dropped.

mod actor;
pub mod queue;
pub mod retry;

use actix::Message;

use crate::config::UploadSettings;

pub use actor::Uploader;

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
