//! grete-smol: drives the IO-free [grete] core over smol.
//!
//! The connection, cluster and client state machines arrive with the client-core issue;
//! this crate currently re-exports the core so that the workspace layout is in place.

pub use grete;
