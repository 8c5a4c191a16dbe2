//! `cargo fuzz run config_keys`: see `postern_fuzz::check_config_keys` for what is fed where and checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::check_config_keys(data));
