#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartnb_fuzz::next(data));
