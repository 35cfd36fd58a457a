#![no_main]
// Arbitrary bytes into medic's playbooks reader: errors are fine, panics are not.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    medic::fuzz::playbooks(data);
});
