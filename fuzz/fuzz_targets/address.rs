//! `cargo fuzz run address`: see `postern_fuzz::check_address` for what is fed where and checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::check_address(data));
