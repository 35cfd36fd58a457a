#![no_main]
// Arbitrary bytes as a Prometheus answer's `data`: errors are fine, panics are not.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    medic::fuzz::prometheus_response(data);
});
