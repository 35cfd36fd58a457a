use super::*;

const DAY: i64 = 24 * 3600;

fn key() -> StepKey {
    StepKey {
        playbook: "pool".into(),
        step: 2,
        action: Action::RolloutRestart,
        target_kind: "Deployment".into(),
    }
}

fn entry(at: Timestamp, event: Event, incident: &str) -> LedgerEntry {
    LedgerEntry {
        at,
        key: key(),
        event,
        incident: incident.into(),
        by: (event == Event::Approved || event == Event::Denied).then(|| "alice".to_string()),
        digest: Some("d1".into()),
    }
}

/// An incident in which people approved the step and it ran and verified.
fn approved_and_verified(at: Timestamp, incident: &str) -> Vec<LedgerEntry> {
    [
        Event::Planned,
        Event::Asked,
        Event::Approved,
        Event::Ran,
        Event::Verified,
    ]
    .into_iter()
    .map(|e| entry(at, e, incident))
    .collect()
}

fn earn() -> Earn {
    Earn {
        approvals: 2,
        verified: 2,
        window: Secs(30 * DAY),
    }
}

#[test]
fn without_earn_the_ceilings_alone_decide() {
    let ledger = Ledger::default();
    let s = ledger.standing(&key(), None, 0);
    assert_eq!(s, Standing::Bounded);
    assert!(s.may_run_alone());
}

#[test]
fn a_new_step_asks_and_is_promoted_at_the_threshold() {
    let mut ledger = Ledger::default();
    let s = ledger.standing(&key(), Some(&earn()), 100);
    assert_eq!(
        s,
        Standing::Asks {
            approvals: 0,
            verified: 0
        }
    );
    assert_eq!(
        s.why_it_asks(2, Action::RolloutRestart, &earn()).unwrap(),
        "step 2 (rollout_restart) has not earned autonomy yet: 0 of 2 approvals and 0 of 2 verified runs in the last 30d"
    );
    for e in approved_and_verified(100, "inc-1") {
        ledger.add(e);
    }
    assert!(!ledger.standing(&key(), Some(&earn()), 200).may_run_alone());
    for e in approved_and_verified(300, "inc-2") {
        ledger.add(e);
    }
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 400),
        Standing::Earned {
            approvals: 2,
            verified: 2
        }
    );
}

#[test]
fn approvals_alone_do_not_earn_it_without_verified_runs() {
    let mut ledger = Ledger::default();
    for (i, at) in [100, 200, 300].into_iter().enumerate() {
        let inc = format!("inc-{i}");
        ledger.add(entry(at, Event::Approved, &inc));
        ledger.add(entry(at, Event::Ran, &inc));
    }
    ledger.add(entry(300, Event::Verified, "inc-2"));
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 400),
        Standing::Asks {
            approvals: 3,
            verified: 1
        }
    );
}

#[test]
fn a_denial_a_failure_or_a_rollback_demotes_at_once_and_counting_starts_again() {
    for demoting in [Event::Denied, Event::Failed, Event::RolledBack] {
        let mut ledger = Ledger::default();
        for e in approved_and_verified(100, "inc-1")
            .into_iter()
            .chain(approved_and_verified(200, "inc-2"))
        {
            ledger.add(e);
        }
        assert!(ledger.standing(&key(), Some(&earn()), 250).may_run_alone());
        ledger.add(entry(300, Event::Ran, "inc-3"));
        ledger.add(entry(300, demoting, "inc-3"));
        let s = ledger.standing(&key(), Some(&earn()), 400);
        let Standing::Demoted {
            approvals,
            verified,
            reason,
            at,
        } = &s
        else {
            panic!("{demoting:?}: {s:?}");
        };
        assert_eq!((*approvals, *verified, *at), (0, 0, 300), "{demoting:?}");
        assert!(reason.ends_with("in inc-3"), "{reason}");
        assert!(!s.may_run_alone());
        // Earned again only with a fresh record.
        for e in approved_and_verified(500, "inc-4")
            .into_iter()
            .chain(approved_and_verified(600, "inc-5"))
        {
            ledger.add(e);
        }
        assert!(ledger.standing(&key(), Some(&earn()), 700).may_run_alone());
    }
    let mut ledger = Ledger::default();
    ledger.add(entry(300, Event::Denied, "inc-3"));
    let s = ledger.standing(&key(), Some(&earn()), 400);
    assert_eq!(
        s.why_it_asks(2, Action::RolloutRestart, &earn()).unwrap(),
        "step 2 (rollout_restart) lost its autonomy (denied by alice in inc-3); since then 0 of 2 approvals and 0 of 2 verified runs in the last 30d"
    );
}

#[test]
fn only_the_window_counts() {
    let mut ledger = Ledger::default();
    for e in approved_and_verified(0, "inc-1")
        .into_iter()
        .chain(approved_and_verified(10 * DAY, "inc-2"))
    {
        ledger.add(e);
    }
    assert!(
        ledger
            .standing(&key(), Some(&earn()), 30 * DAY)
            .may_run_alone()
    );
    // A month after the first, it no longer counts.
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 31 * DAY),
        Standing::Asks {
            approvals: 1,
            verified: 1
        }
    );
    // A denial that has left the window no longer demotes.
    let mut ledger = Ledger::default();
    ledger.add(entry(0, Event::Denied, "inc-0"));
    assert!(matches!(
        ledger.standing(&key(), Some(&earn()), DAY),
        Standing::Demoted { .. }
    ));
    assert!(matches!(
        ledger.standing(&key(), Some(&earn()), 31 * DAY),
        Standing::Asks { .. }
    ));
}

#[test]
fn an_observe_mode_proposal_counts_once_people_approve_the_same_plan() {
    let mut ledger = Ledger::default();
    ledger.add(entry(100, Event::Proposed, "inc-1"));
    let mut other = entry(150, Event::Proposed, "inc-2");
    other.digest = Some("another plan".into());
    ledger.add(other);
    // Proposals alone are no approvals.
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 200),
        Standing::Asks {
            approvals: 0,
            verified: 0
        }
    );
    ledger.add(entry(300, Event::Approved, "inc-3"));
    // The approval, and the proposal of the same plan before it; not the other.
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 400),
        Standing::Asks {
            approvals: 2,
            verified: 0
        }
    );
    // A proposal after the approval is not "answered the same way" (yet).
    ledger.add(entry(500, Event::Proposed, "inc-4"));
    assert_eq!(
        ledger.standing(&key(), Some(&earn()), 600),
        Standing::Asks {
            approvals: 2,
            verified: 0
        }
    );
}

#[test]
fn one_incident_counts_once_however_often_it_is_written() {
    let mut ledger = Ledger::default();
    assert!(ledger.add(entry(100, Event::Approved, "inc-1")));
    assert!(!ledger.add(entry(130, Event::Approved, "inc-1")));
    assert_eq!(ledger.entries().len(), 1);
    let other_step = LedgerEntry {
        key: StepKey { step: 3, ..key() },
        ..entry(100, Event::Approved, "inc-1")
    };
    assert!(ledger.add(other_step));
}

#[test]
fn the_table_counts_each_step_and_says_where_it_stands() {
    let mut ledger = Ledger::default();
    for e in approved_and_verified(100, "inc-1") {
        ledger.add(e);
    }
    ledger.add(entry(200, Event::Denied, "inc-2"));
    let rows = rows(&ledger, Some(&earn()), 300);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].approved,
            rows[0].denied,
            rows[0].ran,
            rows[0].verified
        ),
        (1, 1, 1, 1)
    );
    let table = text_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "PLAYBOOK  STEP  ACTION           ON          PROPOSED  ASKED  APPROVED  DENIED  RAN  VERIFIED  FAILED  ROLLED BACK  STANDING"
    );
    assert_eq!(
        lines[1],
        "pool      2     rollout_restart  Deployment  0         1      1         1       1    1         0       0            demoted: denied by alice in inc-2"
    );
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["standing"], "demoted");
    assert_eq!(json["reason"], "denied by alice in inc-2");
}

#[test]
fn entries_past_every_window_are_forgotten() {
    let mut ledger = Ledger::default();
    ledger.add(entry(0, Event::Denied, "inc-1"));
    ledger.add(entry(100 * DAY, Event::Approved, "inc-2"));
    ledger.forget_before(100 * DAY - MAX_WINDOW);
    let at: Vec<i64> = ledger.entries().iter().map(|e| e.at).collect();
    assert_eq!(at, vec![100 * DAY]);
    // What was forgotten may be written again (a replayed journal).
    assert!(ledger.add(entry(0, Event::Denied, "inc-1")));
}
