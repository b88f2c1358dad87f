//! Operation sequences on a `Client` against the mock cluster, its answers corrupted:
//! every operation finishes once, by its deadline.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::peers::check_client(data));
