//! Blackout windows: times when medic takes no new action (a release
//! freeze, a migration, business hours of a fragile system).

use crate::model::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// An absolute window, `from` inclusive to `to` exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// RFC 3339 (`2024-12-24T00:00:00Z`) or unix seconds.
    #[serde(deserialize_with = "instant")]
    #[schemars(with = "String")]
    pub from: Timestamp,
    #[serde(deserialize_with = "instant")]
    #[schemars(with = "String")]
    pub to: Timestamp,
    #[serde(default)]
    pub reason: String,
}

impl Blackout {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

impl fmt::Display for Blackout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |t: Timestamp| {
            chrono::DateTime::from_timestamp(t, 0).map_or(t.to_string(), |d| {
                d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
        };
        write!(f, "{} to {}", at(self.from), at(self.to))?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

fn instant<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Unix(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Unix(t) => Ok(t),
        Raw::Text(s) => chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp())
            .map_err(|e| serde::de::Error::custom(format!("`{s}` is not RFC 3339: {e}"))),
    }
}

/// A window every day, in UTC; `22:00`-`06:00` crosses midnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyWindow {
    /// `HH:MM`, UTC.
    #[serde(deserialize_with = "minute_of_day", serialize_with = "hh_mm")]
    #[schemars(with = "String")]
    pub from: u32,
    #[serde(deserialize_with = "minute_of_day", serialize_with = "hh_mm")]
    #[schemars(with = "String")]
    pub to: u32,
    #[serde(default)]
    pub reason: String,
}

impl DailyWindow {
    pub fn contains(&self, t: Timestamp) -> bool {
        let minute = (t.rem_euclid(86_400) / 60) as u32;
        if self.from <= self.to {
            self.from <= minute && minute < self.to
        } else {
            minute >= self.from || minute < self.to
        }
    }
}

impl fmt::Display for DailyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} UTC",
            self.from / 60,
            self.from % 60,
            self.to / 60,
            self.to % 60
        )?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        Ok(())
    }
}

fn minute_of_day<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let s = String::deserialize(d)?;
    let bad = || serde::de::Error::custom(format!("`{s}` is not a time of day HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn hh_mm<S: serde::Serializer>(m: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:02}:{:02}", m / 60, m % 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_windows_parse_rfc3339_or_unix_and_exclude_their_end() {
        let b: Blackout =
            serde_yaml::from_str("{from: '2024-01-01T00:10:00Z', to: 1704068400, reason: freeze}")
                .unwrap();
        assert_eq!(b.from, 1_704_067_800);
        assert!(b.contains(1_704_067_800) && !b.contains(1_704_068_400));
        assert_eq!(
            b.to_string(),
            "2024-01-01T00:10:00Z to 2024-01-01T00:20:00Z (freeze)"
        );
        assert!(serde_yaml::from_str::<Blackout>("{from: yesterday, to: 1}").is_err());
    }

    #[test]
    fn daily_windows_may_cross_midnight() {
        let w: DailyWindow = serde_yaml::from_str("{from: '22:00', to: '06:00'}").unwrap();
        let at = |h: i64, m: i64| 1_704_067_200 + h * 3600 + m * 60;
        assert!(w.contains(at(23, 0)) && w.contains(at(5, 59)));
        assert!(!w.contains(at(6, 0)) && !w.contains(at(12, 0)));
        assert!(serde_yaml::from_str::<DailyWindow>("{from: '25:00', to: '06:00'}").is_err());
    }
}
