#![no_main]
// Arbitrary bytes into medic's config reader: errors are fine, panics are not.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    medic::fuzz::config(data);
});
