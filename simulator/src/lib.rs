//! nwf's simulator: the reference interpreter of instantiated programs. It decodes frames and
//! evaluates them the way libvirt's rules behave in the kernel, reporting the verdict and the
//! rule that decided it.

#![warn(missing_docs)]

pub mod build;
pub mod capture;
pub mod conntrack;
pub mod describe;
pub mod eval;
pub mod frame;
pub mod index;
pub mod replay;
