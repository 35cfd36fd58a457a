//! Storm mode: when too many incidents are open at once, something larger
//! than any one playbook is wrong (a zone down, a bad config everywhere),
//! and acting on each incident separately would pile change on change.
//! medic stops new actions, says so once, and leaves only after it has been
//! calm for a while.

use crate::model::{Secs, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StormConfig {
    /// More open incidents than this is a storm.
    pub open_incidents: usize,
    /// How long the count must stay at or below the limit to leave it.
    pub calm_for: Secs,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            open_incidents: 5,
            calm_for: Secs(900),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormChange {
    Entered,
    Left,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Storm {
    since: Option<Timestamp>,
    calm_since: Option<Timestamp>,
}

impl Storm {
    pub fn active(&self) -> bool {
        self.since.is_some()
    }

    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    /// Advances with the number of open incidents at `now`.
    pub fn update(&mut self, open: usize, now: Timestamp, c: &StormConfig) -> Option<StormChange> {
        let over = open > c.open_incidents;
        match (self.since, over) {
            (None, true) => {
                self.since = Some(now);
                self.calm_since = None;
                Some(StormChange::Entered)
            }
            (None, false) => None,
            (Some(_), true) => {
                self.calm_since = None;
                None
            }
            (Some(_), false) => {
                let calm = *self.calm_since.get_or_insert(now);
                if now - calm >= c.calm_for.0 {
                    *self = Storm::default();
                    Some(StormChange::Left)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enters_past_the_limit_and_leaves_only_after_calm_for() {
        let c = StormConfig {
            open_incidents: 2,
            calm_for: Secs(600),
        };
        let mut s = Storm::default();
        assert_eq!(s.update(2, 0, &c), None);
        assert_eq!(s.update(3, 60, &c), Some(StormChange::Entered));
        assert_eq!(s.update(1, 120, &c), None, "calm starts");
        assert_eq!(s.update(4, 300, &c), None, "not calm after all");
        assert_eq!(s.update(1, 360, &c), None);
        assert!(s.active());
        assert_eq!(s.update(1, 959, &c), None);
        assert_eq!(s.update(0, 960, &c), Some(StormChange::Left));
        assert!(!s.active());
    }
}
