//! The blocking transport under the shared producer tests' traits
//! (`transports/testsupport/producing.rs`): every method blocks, so every future is ready
//! at once and the bodies run with `producing::ready`.

use grete_blocking::{
    Delivered, DeliveryHandle, KafkaClient, Producer, Record, SyncProducer, Topic,
};

use super::producing::{Sending, Transport};

super::producing::adapters!(DeliveryHandle, [], [.wait()]);
