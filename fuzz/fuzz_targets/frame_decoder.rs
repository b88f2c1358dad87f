//! The frame decoder: chunking never changes the frames, and no frame passes the max.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::check_frames(data));
