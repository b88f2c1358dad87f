//! The Kafka wire codec: primitives, frames, headers, generated messages, records,
//! compression and error codes. Nothing here does IO.

pub mod error;
pub mod primitives;

pub use error::{DecodeError, EncodeError};
pub use primitives::{Decode, Encode};
