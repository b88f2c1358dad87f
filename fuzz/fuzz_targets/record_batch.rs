//! Record batches (magic 2) through the unified record reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    grete_fuzz::check_records(grete_fuzz::RecordFormat::V2, data)
});
