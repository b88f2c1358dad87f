//! Server messages fed to a `SaslClient`: SCRAM never completes without the server's proof.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| grete_fuzz::peers::check_sasl(data));
