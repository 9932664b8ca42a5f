#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mongars_fuzz::gguf(data));
