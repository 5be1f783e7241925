//! Business hours of a queue: when `/twilio/voice` may enqueue a caller, and when a closed
//! queue opens again so the closed message can say so.
//!
//! Hours come from the centre's TOML file, one table per queue:
//!
//! ```toml
//! [queues.sales.hours]
//! timezone = "Europe/London"
//! monday = ["09:00-12:30", "13:30-17:30"]   # any weekday, lowercase; a missing day is closed
//! saturday = ["10:00-14:00"]
//! holidays = ["2026-12-25", "2026-12-26"]   # closed all day
//! ```
//!
//! Deserializing an [`Hours`] validates it ([`HoursConfig`] is the raw shape, and
//! [`Hours::from_config`] the same check for code that builds one by hand), so a value of this type
//! is always usable: the time zone exists, every range is `HH:MM-HH:MM` with start before end,
//! and every holiday is a real date. Errors name the field (`hours.monday[1]: …`); the config
//! loader prefixes the queue.
//!
//! Everything is evaluated on the wall clock of the queue's time zone: a range is open when the
//! local time of day is in `[start, end)`, so opening times follow daylight saving time. Across a
//! clock change, local times that do not exist are never open, and local times that happen twice
//! are open both times. `"00:00-24:00"` is the whole day. A queue with no `hours` table is always
//! open; that is the caller's decision (`Option<Hours>`), not this type's.
//!
//! Time zones come from jiff, which reads the system tz database (`/usr/share/zoneinfo`) at
//! run time unless its `tzdb-bundle-always` feature is on; an image without tzdata fails at
//! start with "unknown time zone".

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, Zoned};
use serde::Deserialize;

/// How far ahead [`Hours::next_open`] looks: today and this many following local days.
pub const NEXT_OPEN_HORIZON_DAYS: i16 = 14;

/// Minutes in a day; the exclusive end of `"…-24:00"`.
const DAY_MINUTES: u16 = 24 * 60;

/// Weekday field names in the order of [`jiff::civil::Weekday::to_monday_zero_offset`].
const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The `hours` table exactly as written in the config file, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    /// IANA time zone name, e.g. `"Europe/London"`.
    pub timezone: String,
    #[serde(default)]
    pub monday: Vec<String>,
    #[serde(default)]
    pub tuesday: Vec<String>,
    #[serde(default)]
    pub wednesday: Vec<String>,
    #[serde(default)]
    pub thursday: Vec<String>,
    #[serde(default)]
    pub friday: Vec<String>,
    #[serde(default)]
    pub saturday: Vec<String>,
    #[serde(default)]
    pub sunday: Vec<String>,
    /// Local dates (`YYYY-MM-DD`) closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// A configuration mistake in an `hours` table, naming the field and the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hours.{field}: {message}")]
pub struct HoursError {
    /// The field under `hours`, e.g. `timezone`, `monday[1]`, `holidays[0]`.
    pub field: String,
    /// What is wrong with it, quoting the input.
    pub message: String,
}

impl HoursError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        HoursError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One opening range in minutes since local midnight, half-open: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    start: u16,
    end: u16,
}

impl Range {
    fn contains(&self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// A queue's validated business hours. Deserialize it from the `hours` table (validation
/// included) or build it with [`Hours::from_config`].
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "HoursConfig")]
pub struct Hours {
    timezone_name: String,
    tz: TimeZone,
    /// Sorted, non-overlapping ranges, indexed Monday = 0.
    days: [Vec<Range>; 7],
    holidays: BTreeSet<Date>,
}

impl TryFrom<HoursConfig> for Hours {
    type Error = HoursError;

    fn try_from(config: HoursConfig) -> Result<Self, Self::Error> {
        Hours::from_config(config)
    }
}

impl Hours {
    /// Validates a raw `hours` table. Fails on the first mistake, naming the field: an unknown
    /// time zone, a time that is not `HH:MM`, a range that is empty, backwards or overlaps
    /// another of the same day, a holiday that is not a real `YYYY-MM-DD` date.
    pub fn from_config(config: HoursConfig) -> Result<Hours, HoursError> {
        let HoursConfig {
            timezone,
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
            holidays,
        } = config;

        let name = timezone.trim();
        if name.is_empty() {
            return Err(HoursError::new(
                "timezone",
                "is empty; use an IANA name such as \"Europe/London\"",
            ));
        }
        let tz = TimeZone::get(name).map_err(|e| {
            HoursError::new("timezone", format!("unknown time zone {timezone:?} ({e})"))
        })?;

        let raw_days = [
            monday, tuesday, wednesday, thursday, friday, saturday, sunday,
        ];
        let mut days: [Vec<Range>; 7] = Default::default();
        for (index, raw) in raw_days.iter().enumerate() {
            days[index] = parse_day(DAY_NAMES[index], raw)?;
        }

        let mut holiday_set = BTreeSet::new();
        for (i, raw) in holidays.iter().enumerate() {
            let date =
                parse_date(raw).map_err(|msg| HoursError::new(format!("holidays[{i}]"), msg))?;
            holiday_set.insert(date);
        }

        Ok(Hours {
            timezone_name: name.to_string(),
            tz,
            days,
            holidays: holiday_set,
        })
    }

    /// Re-checks a value built by deserialization or [`Hours::from_config`]. Both already
    /// validate, so this always succeeds; it exists so config loading can call `validate()` on
    /// every section uniformly.
    pub fn validate(&self) -> Result<(), HoursError> {
        Ok(())
    }

    /// The queue's time zone, for formatting opening times in the caller's local terms.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// The time zone's name as configured, e.g. `"Europe/London"`.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// Whether the queue takes calls at `at`, judged on the local wall clock of the queue's
    /// time zone: open when the local date is not a holiday and the local time of day falls in
    /// one of that weekday's ranges, start included, end excluded.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = self.tz.to_datetime(at);
        self.is_open_local(local)
    }

    fn is_open_local(&self, local: DateTime) -> bool {
        if self.holidays.contains(&local.date()) {
            return false;
        }
        let minute = minute_of_day(local.time());
        self.ranges_on(local.date())
            .iter()
            .any(|range| range.contains(minute))
    }

    fn ranges_on(&self, date: Date) -> &[Range] {
        let index = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
        self.days.get(index).map(Vec::as_slice).unwrap_or(&[])
    }

    /// When the queue is next open, at or after `at`, in the queue's time zone: `at` itself
    /// when it is open now, otherwise the start of the next range. Looks at today and the
    /// following [`NEXT_OPEN_HORIZON_DAYS`] local days; `None` when nothing opens in that time
    /// (no ranges at all, or a long run of holidays).
    pub fn next_open(&self, at: Timestamp) -> Option<Zoned> {
        if self.is_open(at) {
            return Some(at.to_zoned(self.tz.clone()));
        }
        let today = self.tz.to_datetime(at).date();
        // Every day is scanned (start a day early, never stop at the first hit): around a
        // backwards clock change local dates need not follow the instants' order. A candidate
        // counts only when it is after `at` and `is_open` agrees, so extra days cost a few
        // comparisons and can never give a wrong answer.
        let mut best: Option<Timestamp> = None;
        for offset in -1..=NEXT_OPEN_HORIZON_DAYS {
            let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
                continue;
            };
            if self.holidays.contains(&date) {
                continue;
            }
            for range in self.ranges_on(date) {
                for candidate in self.opening_instants(date, range.start) {
                    if candidate > at
                        && best.is_none_or(|b| candidate < b)
                        && self.is_open(candidate)
                    {
                        best = Some(candidate);
                    }
                }
            }
        }
        best.map(|t| t.to_zoned(self.tz.clone()))
    }

    /// The instants at which the local clock reaches `minute` on `date`: the first instant
    /// whose local time is at or after it. One instant normally, two when the clock goes back
    /// over that time, and the end of the gap when the clock skips it.
    fn opening_instants(&self, date: Date, minute: u16) -> Vec<Timestamp> {
        let Some(time) = time_of_minute(minute) else {
            return Vec::new();
        };
        let local = date.to_datetime(time);
        let ambiguous = self.tz.to_ambiguous_timestamp(local);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                offset.to_timestamp(local).ok().into_iter().collect()
            }
            AmbiguousOffset::Fold { before, after } => [before, after]
                .iter()
                .filter_map(|offset| offset.to_timestamp(local).ok())
                .collect(),
            AmbiguousOffset::Gap { after, .. } => {
                // `local` read with the later offset lies before the transition; the
                // transition itself is the first instant the local clock is past `local`.
                transition_after(&self.tz, after.to_timestamp(local).ok())
                    .into_iter()
                    .collect()
            }
        }
    }
}

fn transition_after(tz: &TimeZone, from: Option<Timestamp>) -> Option<Timestamp> {
    let from = from?;
    tz.following(from).next().map(|t| t.timestamp())
}

fn minute_of_day(time: Time) -> u16 {
    // hour() is 0..=23 and minute() 0..=59, so this is below DAY_MINUTES.
    let hour = u16::try_from(time.hour()).unwrap_or(0);
    let minute = u16::try_from(time.minute()).unwrap_or(0);
    hour * 60 + minute
}

fn time_of_minute(minute: u16) -> Option<Time> {
    if minute >= DAY_MINUTES {
        return None;
    }
    let hour = i8::try_from(minute / 60).ok()?;
    let min = i8::try_from(minute % 60).ok()?;
    Time::new(hour, min, 0, 0).ok()
}

fn parse_day(day: &str, raw: &[String]) -> Result<Vec<Range>, HoursError> {
    let mut ranges = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let range = parse_range(text).map_err(|msg| HoursError::new(format!("{day}[{i}]"), msg))?;
        ranges.push((i, range));
    }
    ranges.sort_by_key(|&(_, range)| range);
    for pair in ranges.windows(2) {
        let [(i, a), (j, b)] = pair else { continue };
        if b.start < a.end {
            let (first, second) = if i < j { (*i, *j) } else { (*j, *i) };
            let quoted = |k: usize| raw.get(k).map(String::as_str).unwrap_or_default();
            return Err(HoursError::new(
                format!("{day}[{second}]"),
                format!(
                    "{:?} overlaps {day}[{first}] {:?}",
                    quoted(second),
                    quoted(first)
                ),
            ));
        }
    }
    Ok(ranges.into_iter().map(|(_, range)| range).collect())
}

fn parse_range(text: &str) -> Result<Range, String> {
    let Some((start, end)) = text.split_once('-') else {
        return Err(format!(
            "{text:?} is not a range; write it as \"09:00-17:30\""
        ));
    };
    let start_min =
        parse_time(start.trim(), false).map_err(|msg| format!("{text:?}: start {msg}"))?;
    let end_min = parse_time(end.trim(), true).map_err(|msg| format!("{text:?}: end {msg}"))?;
    if end_min <= start_min {
        return Err(format!(
            "{text:?} ends before it starts (a range cannot cross midnight; split it over two days)"
        ));
    }
    Ok(Range {
        start: start_min,
        end: end_min,
    })
}

/// Parses `HH:MM` (or `H:MM`) into minutes since midnight; `24:00` only when `allow_24`.
fn parse_time(text: &str, allow_24: bool) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day as HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let hour: u16 = h.parse().map_err(|_| bad())?;
    let minute: u16 = m.parse().map_err(|_| bad())?;
    if hour == 24 && minute == 0 {
        return if allow_24 {
            Ok(DAY_MINUTES)
        } else {
            Err(format!("{text:?} is only allowed as the end of a range"))
        };
    }
    if hour > 23 || minute > 59 {
        return Err(format!(
            "{text:?} is not a time of day (00:00 to 23:59, or 24:00 as an end)"
        ));
    }
    Ok(hour * 60 + minute)
}

fn parse_date(text: &str) -> Result<Date, String> {
    let bad = || format!("{text:?} is not a date as YYYY-MM-DD");
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(bad());
    }
    text.parse::<Date>()
        .map_err(|e| format!("{text:?} is not a real date ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Weekday;

    fn hours(toml_text: &str) -> Result<Hours, String> {
        toml::from_str::<Hours>(toml_text).map_err(|e| e.to_string())
    }

    fn london() -> Hours {
        hours(
            r#"
            timezone = "Europe/London"
            monday = ["09:00-12:30", "13:30-17:30"]
            tuesday = ["09:00-17:30"]
            wednesday = ["09:00-17:30"]
            thursday = ["09:00-17:30"]
            friday = ["09:00-17:30"]
            saturday = ["10:00-14:00"]
            holidays = ["2026-12-25", "2026-12-26"]
            "#,
        )
        .expect("valid hours")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp literal")
    }

    #[test]
    fn europe_london_is_available_on_this_machine() {
        assert!(TimeZone::get("Europe/London").is_ok());
    }

    #[test]
    fn open_inside_a_range_and_closed_over_lunch() {
        let h = london();
        // Monday 2026-01-05, GMT (UTC+0).
        assert!(!h.is_open(ts("2026-01-05T08:59:59Z")));
        assert!(h.is_open(ts("2026-01-05T09:00:00Z")));
        assert!(h.is_open(ts("2026-01-05T12:29:59Z")));
        assert!(!h.is_open(ts("2026-01-05T12:30:00Z")));
        assert!(!h.is_open(ts("2026-01-05T13:29:59Z")));
        assert!(h.is_open(ts("2026-01-05T13:30:00Z")));
        assert!(h.is_open(ts("2026-01-05T17:29:59Z")));
        assert!(!h.is_open(ts("2026-01-05T17:30:00Z")));
    }

    #[test]
    fn missing_day_is_closed_all_day() {
        let h = london();
        // Sunday 2026-01-04.
        assert!(!h.is_open(ts("2026-01-04T12:00:00Z")));
        assert!(!h.is_open(ts("2026-01-04T00:00:00Z")));
    }

    #[test]
    fn holidays_are_closed_all_day_in_local_time() {
        let h = hours(
            r#"
            timezone = "America/New_York"
            thursday = ["00:00-24:00"]
            friday = ["00:00-24:00"]
            holidays = ["2026-12-25"]
            "#,
        )
        .expect("valid");
        // Friday 2026-12-25 in New York is UTC-5: the holiday is 05:00Z..05:00Z next day.
        assert!(
            h.is_open(ts("2026-12-25T04:59:59Z")),
            "Thursday 24th, 23:59:59 local"
        );
        assert!(!h.is_open(ts("2026-12-25T05:00:00Z")));
        assert!(!h.is_open(ts("2026-12-26T04:59:59Z")));
        // Friday 2027-01-01 is an ordinary all-day Friday.
        assert!(h.is_open(ts("2027-01-01T05:00:00Z")));
    }

    #[test]
    fn whole_day_range_covers_midnight_to_midnight() {
        let h = hours(
            r#"
            timezone = "UTC"
            monday = ["00:00-24:00"]
            tuesday = ["00:00-24:00"]
            "#,
        )
        .expect("valid");
        assert!(h.is_open(ts("2026-01-05T00:00:00Z")));
        assert!(h.is_open(ts("2026-01-05T23:59:59.999Z")));
        assert!(h.is_open(ts("2026-01-06T00:00:00Z")));
        assert!(!h.is_open(ts("2026-01-07T00:00:00Z")));
    }

    #[test]
    fn opening_follows_the_spring_clock_change_in_london() {
        let h = london();
        // Sat 2026-03-28 (GMT) and Mon 2026-03-30 (BST, UTC+1): clocks went forward on Sunday 29th.
        assert!(h.is_open(ts("2026-03-28T10:00:00Z")), "10:00 GMT");
        assert!(!h.is_open(ts("2026-03-28T09:59:00Z")));
        assert!(h.is_open(ts("2026-03-30T08:00:00Z")), "09:00 BST");
        assert!(!h.is_open(ts("2026-03-30T07:59:59Z")), "08:59 BST");
        assert!(!h.is_open(ts("2026-03-30T16:30:00Z")), "17:30 BST");
        assert!(h.is_open(ts("2026-03-30T16:29:59Z")));
    }

    #[test]
    fn opening_follows_the_autumn_clock_change_in_london() {
        let h = london();
        // Mon 2026-10-26 is back on GMT (clocks went back on Sunday 25th at 02:00 BST).
        assert!(h.is_open(ts("2026-10-23T08:00:00Z")), "Fri 09:00 BST");
        assert!(!h.is_open(ts("2026-10-26T08:00:00Z")), "Mon 08:00 GMT");
        assert!(h.is_open(ts("2026-10-26T09:00:00Z")), "Mon 09:00 GMT");
    }

    #[test]
    fn local_times_skipped_by_the_clock_are_never_open_and_next_open_is_the_jump() {
        let skipped = hours(
            r#"
            timezone = "Europe/London"
            sunday = ["01:15-01:45"]
            "#,
        )
        .expect("valid");
        // 2026-03-29 01:00 GMT the clock jumps to 02:00 BST: 01:15-01:45 never happens.
        for minute in 0..120 {
            let at = ts("2026-03-29T00:00:00Z")
                .checked_add(jiff::SignedDuration::from_mins(minute))
                .expect("in range");
            assert!(!skipped.is_open(at), "{at}");
        }
        let next = skipped
            .next_open(ts("2026-03-29T00:30:00Z"))
            .expect("opens next Sunday");
        assert_eq!(next.timestamp(), ts("2026-04-05T00:15:00Z"), "01:15 BST");

        let straddling = hours(
            r#"
            timezone = "Europe/London"
            sunday = ["01:30-03:00"]
            "#,
        )
        .expect("valid");
        assert!(!straddling.is_open(ts("2026-03-29T00:59:59Z")), "00:59 GMT");
        assert!(straddling.is_open(ts("2026-03-29T01:00:00Z")), "02:00 BST");
        let next = straddling
            .next_open(ts("2026-03-29T00:10:00Z"))
            .expect("opens at the jump");
        assert_eq!(next.timestamp(), ts("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn local_times_repeated_by_the_clock_are_open_both_times() {
        let h = hours(
            r#"
            timezone = "Europe/London"
            sunday = ["01:30-03:00"]
            "#,
        )
        .expect("valid");
        // 2026-10-25: 01:00-02:00 happens first in BST (00:00Z-01:00Z), then in GMT (01:00Z-02:00Z).
        assert!(!h.is_open(ts("2026-10-25T00:29:59Z")), "01:29 BST");
        assert!(h.is_open(ts("2026-10-25T00:30:00Z")), "01:30 BST");
        assert!(
            !h.is_open(ts("2026-10-25T01:00:00Z")),
            "01:00 GMT, back before the start"
        );
        assert!(h.is_open(ts("2026-10-25T01:30:00Z")), "01:30 GMT");
        assert_eq!(
            h.next_open(ts("2026-10-25T01:10:00Z"))
                .map(|z| z.timestamp()),
            Some(ts("2026-10-25T01:30:00Z"))
        );
        assert_eq!(
            h.next_open(ts("2026-10-25T00:10:00Z"))
                .map(|z| z.timestamp()),
            Some(ts("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn next_open_is_now_when_open() {
        let h = london();
        let at = ts("2026-01-05T10:00:00Z");
        assert_eq!(h.next_open(at).map(|z| z.timestamp()), Some(at));
    }

    #[test]
    fn next_open_finds_the_afternoon_after_lunch() {
        let h = london();
        let next = h.next_open(ts("2026-01-05T12:45:00Z")).expect("opens");
        assert_eq!(next.timestamp(), ts("2026-01-05T13:30:00Z"));
        assert_eq!(next.time_zone().iana_name(), Some("Europe/London"));
    }

    #[test]
    fn next_open_skips_closed_days_and_holidays() {
        let h = london();
        // Christmas Eve 2026 is a Thursday, after closing: Fri 25 and Sat 26 are holidays,
        // Sunday is closed, so Monday 28th 09:00 GMT.
        let next = h.next_open(ts("2026-12-24T18:00:00Z")).expect("opens");
        assert_eq!(next.timestamp(), ts("2026-12-28T09:00:00Z"));
        assert_eq!(next.weekday(), Weekday::Monday);
    }

    #[test]
    fn next_open_crosses_the_spring_clock_change() {
        let h = london();
        // Saturday 2026-03-28 after closing (GMT); next is Monday 09:00 BST = 08:00Z.
        let next = h.next_open(ts("2026-03-28T15:00:00Z")).expect("opens");
        assert_eq!(next.timestamp(), ts("2026-03-30T08:00:00Z"));
        assert_eq!((next.hour(), next.minute()), (9, 0));
    }

    #[test]
    fn next_open_is_none_when_nothing_opens_within_the_horizon() {
        let never = hours(r#"timezone = "Europe/London""#).expect("valid");
        assert!(!never.is_open(ts("2026-01-05T10:00:00Z")));
        assert!(never.next_open(ts("2026-01-05T10:00:00Z")).is_none());

        let holidays: Vec<String> = (1..=20).map(|d| format!("\"2026-01-{d:02}\"")).collect();
        let long_break = hours(&format!(
            "timezone = \"UTC\"\nmonday = [\"09:00-17:00\"]\nholidays = [{}]",
            holidays.join(", ")
        ))
        .expect("valid");
        // Mondays 5, 12, 19 are holidays; 26 is 25 days away.
        assert!(long_break.next_open(ts("2026-01-01T00:00:00Z")).is_none());
        assert_eq!(
            long_break
                .next_open(ts("2026-01-13T00:00:00Z"))
                .map(|z| z.timestamp()),
            Some(ts("2026-01-26T09:00:00Z"))
        );
    }

    #[test]
    fn unknown_timezone_is_named() {
        let err = hours(r#"timezone = "Europe/Lodnon""#).unwrap_err();
        assert!(err.contains("hours.timezone"), "{err}");
        assert!(err.contains("Europe/Lodnon"), "{err}");
        let err = hours(r#"timezone = " ""#).unwrap_err();
        assert!(err.contains("hours.timezone"), "{err}");
    }

    #[test]
    fn backwards_range_is_named() {
        let err = hours(
            r#"
            timezone = "UTC"
            monday = ["09:00-12:00", "17:00-09:00"]
            "#,
        )
        .unwrap_err();
        assert!(err.contains("hours.monday[1]"), "{err}");
        assert!(err.contains("17:00-09:00"), "{err}");
        let err = hours("timezone = \"UTC\"\nfriday = [\"09:00-09:00\"]").unwrap_err();
        assert!(err.contains("hours.friday[0]"), "{err}");
    }

    #[test]
    fn bad_times_are_named() {
        for bad in [
            "9-17",
            "09:00",
            "25:00-26:00",
            "09:60-10:00",
            "24:00-24:00",
            "09:00-24:01",
            "9:5-10:00",
            "09:00-17:00-18:00",
            "+9:00-10:00",
            "",
            "０９:00-10:00",
        ] {
            let text = format!("timezone = \"UTC\"\ntuesday = [\"{bad}\"]");
            let err = hours(&text).unwrap_err();
            assert!(err.contains("hours.tuesday[0]"), "{bad}: {err}");
        }
        // One-digit hours and spaces around the dash are fine.
        assert!(hours("timezone = \"UTC\"\ntuesday = [\"9:00 - 17:30\"]").is_ok());
    }

    #[test]
    fn overlapping_ranges_are_named() {
        let err =
            hours("timezone = \"UTC\"\nmonday = [\"13:00-17:00\", \"09:00-13:30\"]").unwrap_err();
        // The later entry is the one named, pointing back at the earlier one.
        assert!(err.contains("hours.monday[1]"), "{err}");
        assert!(err.contains("overlaps monday[0]"), "{err}");
        // Touching is not overlapping.
        assert!(hours("timezone = \"UTC\"\nmonday = [\"09:00-13:00\", \"13:00-17:00\"]").is_ok());
    }

    #[test]
    fn bad_dates_are_named() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-12-25",
            "2026/12/25",
            "tomorrow",
            "20261225",
        ] {
            let text = format!("timezone = \"UTC\"\nholidays = [\"2026-01-01\", \"{bad}\"]");
            let err = hours(&text).unwrap_err();
            assert!(err.contains("hours.holidays[1]"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_fields_and_wrong_day_names_are_rejected() {
        let err = hours("timezone = \"UTC\"\nMonday = [\"09:00-17:00\"]").unwrap_err();
        assert!(err.contains("Monday"), "{err}");
        let err = hours("timezone = \"UTC\"\nholiday = [\"2026-12-25\"]").unwrap_err();
        assert!(err.contains("holiday"), "{err}");
        assert!(
            hours("monday = [\"09:00-17:00\"]").is_err(),
            "timezone is required"
        );
    }

    #[test]
    fn nested_in_a_queue_table_as_in_the_centre_config() {
        #[derive(Deserialize)]
        struct Queue {
            hours: Option<Hours>,
        }
        #[derive(Deserialize)]
        struct Centre {
            queues: std::collections::BTreeMap<String, Queue>,
        }
        let centre: Centre = toml::from_str(
            r#"
            [queues.sales.hours]
            timezone = "Europe/London"
            monday = ["09:00-12:30", "13:30-17:30"]
            saturday = ["10:00-14:00"]
            holidays = ["2026-12-25", "2026-12-26"]

            [queues.support]
            "#,
        )
        .expect("valid centre");
        let sales = centre.queues["sales"]
            .hours
            .as_ref()
            .expect("sales has hours");
        assert_eq!(sales.timezone_name(), "Europe/London");
        assert!(sales.validate().is_ok());
        assert!(centre.queues["support"].hours.is_none());

        let err = toml::from_str::<Centre>(
            "[queues.sales.hours]\ntimezone = \"UTC\"\nmonday = [\"17:00-09:00\"]",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("hours.monday[0]"), "{err}");
    }
}
