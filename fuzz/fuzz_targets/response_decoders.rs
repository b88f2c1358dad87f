//! Every generated response codec, and the response header: decode, re-encode, decode equal.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::messages::check_responses(data));
