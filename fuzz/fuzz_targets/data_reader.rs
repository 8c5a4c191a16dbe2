//! `cargo fuzz run data_reader`: see `postern_fuzz::check_data_reader` for what is fed where and checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::check_data_reader(data));
