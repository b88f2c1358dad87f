//! The Kafka wire codec: primitives, frames, headers, generated messages, records,
//! compression and error codes. Nothing here does IO.

pub mod compression;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod messages;
pub mod primitives;
pub mod records;

pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use primitives::{Decode, Encode};
