//! Bounded zstd decompression: the output never passes the limit; round trips hold.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    grete_fuzz::check_decompress(grete::protocol::compression::Compression::Zstd, data)
});
