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
//! - [`exposition`]: the Prometheus text format and OpenMetrics, for the
//!   listener's `/metrics` (same series as remote-write).
//! - [`points`]: the sample → points walk the numeric formats share.
//! - [`select`]: `[collect]`'s choice of reply fields (profile, include,
//!   exclude), applied by that walk.

pub mod exposition;
pub mod flatten;
pub mod influx;
pub mod json;
pub mod points;
pub mod remote_write;
pub mod schema;
pub mod select;
pub mod vm_import;

use crate::config::UploadFormat;
use crate::sample::Sample;
use select::Selection;

/// Appends the encoding of `sample` to `out` in the given format. The
/// numeric formats send the reply fields `sel` keeps; `json` sends whole
/// documents (the MMS agent's model), so `[collect]` does not apply to it.
pub fn encode(format: UploadFormat, sample: &Sample, sel: &mut Selection, out: &mut Vec<u8>) {
    match format {
        UploadFormat::Influx => influx::encode_selected(sample, sel, out),
        UploadFormat::Json => json::encode(sample, out),
        UploadFormat::RemoteWrite => remote_write::encode_selected(sample, sel, out),
        UploadFormat::VmImport => vm_import::encode_selected(sample, sel, out),
    }
}
