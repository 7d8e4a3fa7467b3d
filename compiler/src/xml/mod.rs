//! The libvirt nwfilter XML front end: reading (to IR) and canonical writing.

mod read;
mod write;

pub use read::{parse_document, read_filter, read_text};
pub use write::write_filter;
