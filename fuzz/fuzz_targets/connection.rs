//! Broker bytes fed to one `Connection`: every request answered once, closure complete.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::peers::check_connection(data));
