//! The ZooKeeper JSON parser: limits hold, what parses prints back to the same value.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::json::check_zk_json(data));
