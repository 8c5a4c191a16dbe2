//! `cargo fuzz run smtp_command`: see `postern_fuzz::check_smtp_command` for what is fed where and checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::check_smtp_command(data));
