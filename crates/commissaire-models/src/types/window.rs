//! Maintenance windows: when a cluster's rolling operations may work on
//! hosts (days of the week, a start and an end time of day, a time zone),
//! as kured's reboot window.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// One window: on each of `days` (none: every day), from `start` to `end`
/// (`"HH:MM"` or `"HH:MM:SS"`) in `timezone` (an IANA name, default `UTC`).
/// An `end` before `start` ends on the next day (`22:00` to `04:00`); the
/// day is the one the window starts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days the window opens on: `mon` ... `sun` (or full names); empty: every day.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// When it opens.
    pub start: String,
    /// When it closes.
    pub end: String,
    /// The time zone of `start` and `end` (e.g. `Europe/Paris`); empty: UTC.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub timezone: String,
}

/// A window, read and checked.
struct Parsed {
    days: Vec<Weekday>,
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
}

fn time_of_day(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

impl MaintenanceWindow {
    /// Checks the window; the error names the member and says what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.parse().map(drop)
    }

    fn parse(&self) -> Result<Parsed, (String, String)> {
        let mut days = Vec::with_capacity(self.days.len());
        for (i, d) in self.days.iter().enumerate() {
            let day = d.trim().parse::<Weekday>().map_err(|_| {
                (
                    format!("days[{i}]"),
                    format!("'{d}' is not a day of the week (mon, tue, ... sun)"),
                )
            })?;
            days.push(day);
        }
        let time = |member: &str, text: &str| {
            time_of_day(text.trim()).ok_or_else(|| {
                (
                    member.to_string(),
                    format!("'{text}' is not a time of day (HH:MM or HH:MM:SS)"),
                )
            })
        };
        let start = time("start", &self.start)?;
        let end = time("end", &self.end)?;
        if start == end {
            return Err((
                "end".into(),
                "must differ from start (a window of no time, or of a whole day: leave the windows out)".into(),
            ));
        }
        let tz = match self.timezone.trim() {
            "" => Tz::UTC,
            name => name.parse::<Tz>().map_err(|_| {
                (
                    "timezone".to_string(),
                    format!("'{name}' is not a time zone name (e.g. UTC, Europe/Paris)"),
                )
            })?,
        };
        Ok(Parsed {
            days,
            start,
            end,
            tz,
        })
    }

    /// The window's openings that start on local day `date`: `(open, close)` in UTC.
    fn opening_on(p: &Parsed, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !p.days.is_empty() && !p.days.contains(&date.weekday()) {
            return None;
        }
        let end_date = if p.end > p.start {
            date
        } else {
            date.succ_opt()?
        };
        // A time a clock change skips opens or closes an hour later.
        let at = |d: NaiveDate, t: NaiveTime| {
            let local = d.and_time(t);
            p.tz.from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    p.tz.from_local_datetime(&(local + Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
        };
        Some((at(date, p.start)?, at(end_date, p.end)?))
    }

    /// The opening containing `now`, if the window is open: when it closes.
    fn open_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let p = self.parse().ok()?;
        let today = now.with_timezone(&p.tz).date_naive();
        [today.pred_opt()?, today]
            .into_iter()
            .filter_map(|d| Self::opening_on(&p, d))
            .find(|(open, close)| *open <= now && now < *close)
            .map(|(_, close)| close)
    }

    /// When the window next opens after `now` (within the next 8 days).
    fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let p = self.parse().ok()?;
        let today = now.with_timezone(&p.tz).date_naive();
        (0..=8)
            .filter_map(|n| today.checked_add_days(chrono::Days::new(n)))
            .filter_map(|d| Self::opening_on(&p, d))
            .map(|(open, _)| open)
            .find(|open| *open > now)
    }
}

/// Where `now` is with respect to a set of windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// No windows: any time will do.
    Always,
    /// Inside a window, which closes then.
    OpenUntil(DateTime<Utc>),
    /// Outside every window; the next opens then (none: never, e.g. no day matches).
    Closed(Option<DateTime<Utc>>),
}

/// Where `now` is with respect to `windows` (any one open will do).
pub fn window_state(windows: &[MaintenanceWindow], now: DateTime<Utc>) -> WindowState {
    if windows.is_empty() {
        return WindowState::Always;
    }
    if let Some(close) = windows.iter().filter_map(|w| w.open_until(now)).max() {
        return WindowState::OpenUntil(close);
    }
    WindowState::Closed(windows.iter().filter_map(|w| w.next_open(now)).min())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &[&str], start: &str, end: &str, tz: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
            timezone: tz.into(),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_window_across_midnight_is_open_from_its_day_into_the_next() {
        // 2026-12-04 is a Friday.
        let ws = [w(&["fri"], "22:00", "04:00", "")];
        assert_eq!(
            window_state(&ws, utc("2026-12-04T23:30:00Z")),
            WindowState::OpenUntil(utc("2026-12-05T04:00:00Z"))
        );
        assert_eq!(
            window_state(&ws, utc("2026-12-05T03:59:59Z")),
            WindowState::OpenUntil(utc("2026-12-05T04:00:00Z"))
        );
        assert_eq!(
            window_state(&ws, utc("2026-12-05T04:00:00Z")),
            WindowState::Closed(Some(utc("2026-12-11T22:00:00Z"))),
            "closed at its end; next Friday's opens next"
        );
        assert_eq!(
            window_state(&ws, utc("2026-12-03T23:00:00Z")),
            WindowState::Closed(Some(utc("2026-12-04T22:00:00Z"))),
            "Thursday night is not Friday's"
        );
    }

    #[test]
    fn time_zones_and_seconds_count() {
        // Paris is UTC+1 in December.
        let ws = [w(&[], "02:00", "02:00:30", "Europe/Paris")];
        assert_eq!(
            window_state(&ws, utc("2026-12-01T01:00:10Z")),
            WindowState::OpenUntil(utc("2026-12-01T01:00:30Z"))
        );
        assert_eq!(
            window_state(&ws, utc("2026-12-01T02:00:10Z")),
            WindowState::Closed(Some(utc("2026-12-02T01:00:00Z")))
        );
        assert_eq!(
            window_state(&[], utc("2026-12-01T02:00:10Z")),
            WindowState::Always
        );
    }

    #[test]
    fn bad_windows_name_the_member() {
        for (bad, member) in [
            (w(&["someday"], "01:00", "02:00", ""), "days[0]"),
            (w(&[], "25:00", "02:00", ""), "start"),
            (w(&[], "01:00", "1 pm", ""), "end"),
            (w(&[], "01:00", "01:00", ""), "end"),
            (w(&[], "01:00", "02:00", "Mars/Olympus"), "timezone"),
        ] {
            assert_eq!(bad.check().unwrap_err().0, member, "{bad:?}");
        }
        assert!(
            w(&["Monday", "sat"], "01:00:05", "02:00", "America/New_York")
                .check()
                .is_ok()
        );
    }
}
