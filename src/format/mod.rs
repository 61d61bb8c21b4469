//! Encoding samples for the receiver.
//!
//! - [`influx`]: InfluxDB line protocol, one line per measurement, numeric
//!   fields flattened from the reply with stable `_`-joined names.
//! - [`json`]: one JSON object per sample and line, with the whole reply as
//!   relaxed Extended JSON (the MMS agent's "whole document" model).
//! - [`remote_write`]: Prometheus remote-write series (protobuf; snappy
//!   when the batch is cut).
//! - [`vm_import`]: JSON lines in VictoriaMetrics' import schema (the
//!   numeric part only).
//! - [`points`]: the sample → points walk the numeric formats share.

pub mod flatten;
pub mod influx;
pub mod json;
pub mod points;
pub mod remote_write;
pub mod schema;
pub mod vm_import;

use crate::config::UploadFormat;
use crate::sample::Sample;

/// Appends the encoding of `sample` to `out` in the given format.
pub fn encode(format: UploadFormat, sample: &Sample, out: &mut Vec<u8>) {
    match format {
        UploadFormat::Influx => influx::encode(sample, out),
        UploadFormat::Json => json::encode(sample, out),
        UploadFormat::RemoteWrite => remote_write::encode(sample, out),
        UploadFormat::VmImport => vm_import::encode(sample, out),
    }
}
