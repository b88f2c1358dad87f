//! The producer state machine fed any answers: every record one outcome, timers honest.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::producer::check_producer(data));
