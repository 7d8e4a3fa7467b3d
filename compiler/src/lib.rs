//! nwf's compiler: reads libvirt nwfilter definitions, lowers them to a typed IR, checks them,
//! and instantiates them for one VM port into the ordered rule [`program::Program`] that the
//! simulator and every backend consume.
//!
//! Data flow: source text -> [`xml`] reader -> [`ir`] -> [`check`] -> [`instantiate`] ->
//! [`program`]. See `docs/ARCHITECTURE.md`.

#![warn(missing_docs)]

pub mod backend;
pub mod binding;
pub mod check;
pub mod diag;
pub mod driver;
pub mod dsl;
pub mod frontend;
pub mod instantiate;
pub mod ir;
pub mod lang;
pub mod library;
mod lower;
pub mod position;
pub mod program;
pub mod source;
pub mod stdlib;
pub mod value;
pub mod xml;
