//! Replays every input the fuzzers kept (fuzz/corpus/<target>/) through the
//! same entry points: a finding once fixed stays fixed. Long fuzz runs stay
//! out of CI (see the README).

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn every_kept_input_is_refused_or_accepted_without_a_panic() {
    assert!(replay("playbooks", medic::fuzz::playbooks) > 0);
    assert!(replay("fixture", medic::fuzz::fixture) > 0);
    assert!(replay("config", medic::fuzz::config) > 0);
    assert!(replay("webhook", medic::fuzz::webhook) > 0);
    assert!(replay("prometheus", medic::fuzz::prometheus_response) > 0);
}
