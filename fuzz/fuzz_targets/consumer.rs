//! The consumer state machine fed any answers: offsets only move forward but by a seek or
//! a reset, timers honest.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::consumer::check_consumer(data));
