//! Legacy message sets (magic 0 and 1) through the unified record reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    grete_fuzz::check_records(grete_fuzz::RecordFormat::Legacy, data)
});
