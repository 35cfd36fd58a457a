#![no_main]
// Arbitrary bytes into medic's webhook reader: errors are fine, panics are not.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    medic::fuzz::webhook(data);
});
