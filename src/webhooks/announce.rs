//! What a caller hears while waiting, as plain text for TwiML `<Say>`: their place in line,
//! an estimated wait rounded the way a person would say it, and when a closed queue opens, in
//! English and (the `*_in` functions with [`Lang::Es`]) Spanish.
//!
//! The wording is English and deliberately honest: a caller still waiting never hears "0
//! minutes", a long estimate is not shortened into something hopeful, and an estimate we do
//! not have is said as such. The text is for a speech engine, so numbers are digits (engines
//! read them well) and no markup is produced; the TwiML writer escapes it.

use jiff::Zoned;

use crate::config::language::Lang;

/// Estimates above this many seconds are said as "more than an hour and a half".
const LONGEST_SPOKEN_S: f64 = 90.0 * 60.0;

/// The caller's place in line, 1 being the next call an agent gets. Position 0 (already at
/// the head, being offered) is said the same as 1.
///
/// `position_phrase(1)` is "You are next in line.", `position_phrase(3)` "You are number 3 in
/// line."
pub fn position_phrase(position: u64) -> String {
    if position <= 1 {
        "You are next in line.".to_string()
    } else {
        format!("You are number {position} in line.")
    }
}

/// An estimated wait in seconds, as a phrase that completes "Your estimated wait is …":
///
/// | estimate | said |
/// |---|---|
/// | under 1 minute (and negative) | "less than a minute" |
/// | 1 to 10 minutes | nearest minute: "about a minute", "about 2 minutes", … "about 10 minutes" |
/// | 10 to 30 minutes | nearest 5 minutes: "about 15 minutes" |
/// | 30 to 90 minutes | nearest 15 minutes: "about 45 minutes", "about an hour", "about an hour and a quarter", "about an hour and a half" |
/// | over 90 minutes (and +∞) | "more than an hour and a half" |
/// | NaN (no estimate) | "an unknown time" (prefer [`wait_sentence`], which words it better) |
///
/// Each band's upper bound belongs to it (exactly 10 minutes is "about 10 minutes"), and the
/// rounding never says less than the band below, so a growing estimate never sounds shorter.
pub fn wait_phrase(estimate_s: f64) -> String {
    match wait_band(estimate_s) {
        WaitBand::Unknown => "an unknown time".to_string(),
        WaitBand::UnderAMinute => "less than a minute".to_string(),
        WaitBand::Over90Minutes => "more than an hour and a half".to_string(),
        WaitBand::About(0 | 1) => "about a minute".to_string(),
        WaitBand::About(60) => "about an hour".to_string(),
        WaitBand::About(75) => "about an hour and a quarter".to_string(),
        WaitBand::About(90) => "about an hour and a half".to_string(),
        WaitBand::About(n) => format!("about {n} minutes"),
    }
}

/// An estimate as it is said, whatever the language (the bands of [`wait_phrase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitBand {
    Unknown,
    UnderAMinute,
    /// About this many minutes, rounded to the band's step (1 ..= 90).
    About(u32),
    Over90Minutes,
}

fn wait_band(estimate_s: f64) -> WaitBand {
    if estimate_s.is_nan() {
        return WaitBand::Unknown;
    }
    if estimate_s < 60.0 {
        return WaitBand::UnderAMinute;
    }
    if estimate_s > LONGEST_SPOKEN_S {
        return WaitBand::Over90Minutes;
    }
    let minutes = estimate_s / 60.0;
    let rounded = if minutes <= 10.0 {
        minutes.round().max(1.0)
    } else if minutes <= 30.0 {
        (minutes / 5.0).round() * 5.0
    } else {
        (minutes / 15.0).round() * 15.0
    };
    // 1.0 ..= 90.0 here, so the cast is exact.
    WaitBand::About(rounded as u32)
}

/// The whole wait announcement: "Your estimated wait is about 5 minutes." When there is no
/// estimate (NaN) it says so instead of guessing: "We cannot estimate your wait right now."
pub fn wait_sentence(estimate_s: f64) -> String {
    if estimate_s.is_nan() {
        "We cannot estimate your wait right now.".to_string()
    } else {
        format!("Your estimated wait is {}.", wait_phrase(estimate_s))
    }
}

/// When a closed queue opens, relative to `now`, in the time zone of `opens` (the queue's, as
/// returned by `Hours::next_open`): "today at 1:30 PM", "tomorrow at 9 AM", "on Monday at 9
/// AM", and beyond a week "on Monday, December 28, at 9 AM". Midnight is said as "from
/// midnight" ("tomorrow, from midnight") because "Monday at midnight" is heard as the night
/// after Monday. When `opens` is not after `now`, "now".
pub fn opening_phrase(now: &Zoned, opens: &Zoned) -> String {
    let Some(days_ahead) = days_ahead(now, opens) else {
        return "now".to_string();
    };
    let day = opens.date();
    let day_words = match days_ahead {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        2..=6 => format!("on {}", weekday_name(day.weekday())),
        _ => format!(
            "on {}, {} {},",
            weekday_name(day.weekday()),
            month_name(day.month()),
            day.day()
        ),
    };
    let (hour, minute) = (opens.hour(), opens.minute());
    if hour == 0 && minute == 0 {
        let day_words = day_words.trim_end_matches(',');
        return format!("{day_words}, from midnight");
    }
    format!("{day_words} at {}", clock_phrase(hour, minute))
}

/// Days from `now`'s date to `opens`' date, both in `opens`' time zone; None when `opens` is
/// not after `now`.
fn days_ahead(now: &Zoned, opens: &Zoned) -> Option<i32> {
    if opens.timestamp() <= now.timestamp() {
        return None;
    }
    let today = now.with_time_zone(opens.time_zone().clone()).date();
    Some(
        today
            .until(opens.date())
            .map(|span| span.get_days())
            .unwrap_or(i32::MAX),
    )
}

/// "9 AM", "1:30 PM", "noon", "12:15 PM", "12:05 AM".
fn clock_phrase(hour: i8, minute: i8) -> String {
    if hour == 12 && minute == 0 {
        return "noon".to_string();
    }
    let suffix = if hour < 12 { "AM" } else { "PM" };
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    if minute == 0 {
        format!("{h12} {suffix}")
    } else {
        format!("{h12}:{minute:02} {suffix}")
    }
}

fn weekday_name(weekday: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match weekday {
        Monday => "Monday",
        Tuesday => "Tuesday",
        Wednesday => "Wednesday",
        Thursday => "Thursday",
        Friday => "Friday",
        Saturday => "Saturday",
        Sunday => "Sunday",
    }
}

fn month_name(month: i8) -> &'static str {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("")
}

/// [`position_phrase`] in `lang`: "Es usted el siguiente.", "Es usted el número 3 en la cola."
pub fn position_in(lang: Lang, position: u64) -> String {
    match lang {
        Lang::En => position_phrase(position),
        Lang::Es if position <= 1 => "Es usted el siguiente.".to_string(),
        Lang::Es => format!("Es usted el número {position} en la cola."),
    }
}

/// [`wait_sentence`] in `lang`, with the same bands and rounding: "Su espera estimada es de
/// alrededor de 5 minutos."
pub fn wait_sentence_in(lang: Lang, estimate_s: f64) -> String {
    match lang {
        Lang::En => wait_sentence(estimate_s),
        Lang::Es if estimate_s.is_nan() => "Ahora mismo no podemos estimar su espera.".to_string(),
        Lang::Es => format!("Su espera estimada es de {}.", wait_phrase_es(estimate_s)),
    }
}

fn wait_phrase_es(estimate_s: f64) -> String {
    match wait_band(estimate_s) {
        WaitBand::Unknown => "un tiempo desconocido".to_string(),
        WaitBand::UnderAMinute => "menos de un minuto".to_string(),
        WaitBand::Over90Minutes => "más de una hora y media".to_string(),
        WaitBand::About(0 | 1) => "alrededor de un minuto".to_string(),
        WaitBand::About(60) => "alrededor de una hora".to_string(),
        WaitBand::About(75) => "alrededor de una hora y cuarto".to_string(),
        WaitBand::About(90) => "alrededor de una hora y media".to_string(),
        WaitBand::About(n) => format!("alrededor de {n} minutos"),
    }
}

/// [`opening_phrase`] in `lang`: "hoy a las 13:30", "mañana a las 9:00", "el lunes a las
/// 9:00", beyond a week "el lunes 28 de diciembre a las 9:00", and midnight as "mañana, desde
/// medianoche". When `opens` is not after `now`, "ahora".
pub fn opening_in(lang: Lang, now: &Zoned, opens: &Zoned) -> String {
    if lang == Lang::En {
        return opening_phrase(now, opens);
    }
    let Some(days_ahead) = days_ahead(now, opens) else {
        return "ahora".to_string();
    };
    let day = opens.date();
    let day_words = match days_ahead {
        0 => "hoy".to_string(),
        1 => "mañana".to_string(),
        2..=6 => format!("el {}", weekday_es(day.weekday())),
        _ => format!(
            "el {} {} de {}",
            weekday_es(day.weekday()),
            day.day(),
            month_es(day.month())
        ),
    };
    let (hour, minute) = (opens.hour(), opens.minute());
    if hour == 0 && minute == 0 {
        return format!("{day_words}, desde medianoche");
    }
    let article = if hour == 1 { "a la" } else { "a las" };
    format!("{day_words} {article} {hour}:{minute:02}")
}

fn weekday_es(weekday: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday::*;
    match weekday {
        Monday => "lunes",
        Tuesday => "martes",
        Wednesday => "miércoles",
        Thursday => "jueves",
        Friday => "viernes",
        Saturday => "sábado",
        Sunday => "domingo",
    }
}

fn month_es(month: i8) -> &'static str {
    const MONTHS: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod spanish_tests {
    use super::*;

    #[test]
    fn place_and_wait_in_spanish() {
        assert_eq!(position_in(Lang::Es, 1), "Es usted el siguiente.");
        assert_eq!(position_in(Lang::Es, 4), "Es usted el número 4 en la cola.");
        assert_eq!(position_in(Lang::En, 4), position_phrase(4));
        let cases = [
            (30.0, "menos de un minuto"),
            (70.0, "alrededor de un minuto"),
            (290.0, "alrededor de 5 minutos"),
            (1_000.0, "alrededor de 15 minutos"),
            (3_600.0, "alrededor de una hora"),
            (4_400.0, "alrededor de una hora y cuarto"),
            (5_300.0, "alrededor de una hora y media"),
            (9_000.0, "más de una hora y media"),
        ];
        for (s, words) in cases {
            assert_eq!(
                wait_sentence_in(Lang::Es, s),
                format!("Su espera estimada es de {words}."),
                "{s} s"
            );
        }
        assert_eq!(
            wait_sentence_in(Lang::Es, f64::NAN),
            "Ahora mismo no podemos estimar su espera."
        );
    }

    #[test]
    fn opening_in_spanish() {
        let tz = "Europe/Madrid";
        let at = |s: &str| -> Zoned { format!("{s}[{tz}]").parse().expect("a zoned time") };
        let now = at("2026-12-21T20:00");
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-21T21:30")),
            "hoy a las 21:30"
        );
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-22T09:00")),
            "mañana a las 9:00"
        );
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-22T01:15")),
            "mañana a la 1:15"
        );
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-24T09:00")),
            "el jueves a las 9:00"
        );
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-28T09:00")),
            "el lunes 28 de diciembre a las 9:00"
        );
        assert_eq!(
            opening_in(Lang::Es, &now, &at("2026-12-23T00:00")),
            "el miércoles, desde medianoche"
        );
        assert_eq!(opening_in(Lang::Es, &now, &now), "ahora");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: f64 = 60.0;

    #[test]
    fn position_one_is_next_in_line() {
        assert_eq!(position_phrase(1), "You are next in line.");
        assert_eq!(position_phrase(0), "You are next in line.");
    }

    #[test]
    fn later_positions_say_their_number() {
        assert_eq!(position_phrase(2), "You are number 2 in line.");
        assert_eq!(position_phrase(3), "You are number 3 in line.");
        assert_eq!(position_phrase(117), "You are number 117 in line.");
        assert_eq!(
            position_phrase(u64::MAX),
            format!("You are number {} in line.", u64::MAX)
        );
    }

    #[test]
    fn under_a_minute_is_less_than_a_minute_never_zero() {
        for s in [0.0, 0.4, 29.0, 30.0, 59.999, -0.0] {
            assert_eq!(wait_phrase(s), "less than a minute", "{s}");
        }
    }

    #[test]
    fn negative_and_infinite_estimates_are_said_honestly() {
        assert_eq!(wait_phrase(-5.0), "less than a minute");
        assert_eq!(wait_phrase(f64::NEG_INFINITY), "less than a minute");
        assert_eq!(wait_phrase(f64::INFINITY), "more than an hour and a half");
        assert_eq!(wait_phrase(f64::MAX), "more than an hour and a half");
        assert_eq!(wait_phrase(f64::NAN), "an unknown time");
        assert_eq!(
            wait_sentence(f64::NAN),
            "We cannot estimate your wait right now."
        );
    }

    #[test]
    fn one_to_ten_minutes_rounds_to_the_nearest_minute() {
        assert_eq!(wait_phrase(60.0), "about a minute");
        assert_eq!(wait_phrase(89.9), "about a minute");
        assert_eq!(wait_phrase(90.0), "about 2 minutes");
        assert_eq!(wait_phrase(2.0 * MIN), "about 2 minutes");
        assert_eq!(wait_phrase(2.49 * MIN), "about 2 minutes");
        assert_eq!(wait_phrase(2.5 * MIN), "about 3 minutes");
        assert_eq!(wait_phrase(7.2 * MIN), "about 7 minutes");
        assert_eq!(wait_phrase(9.5 * MIN), "about 10 minutes");
        assert_eq!(wait_phrase(10.0 * MIN), "about 10 minutes");
    }

    #[test]
    fn ten_to_thirty_minutes_rounds_to_five() {
        assert_eq!(wait_phrase(10.0 * MIN + 1.0), "about 10 minutes");
        assert_eq!(wait_phrase(12.4 * MIN), "about 10 minutes");
        assert_eq!(wait_phrase(12.5 * MIN), "about 15 minutes");
        assert_eq!(wait_phrase(17.0 * MIN), "about 15 minutes");
        assert_eq!(wait_phrase(22.6 * MIN), "about 25 minutes");
        assert_eq!(wait_phrase(30.0 * MIN), "about 30 minutes");
    }

    #[test]
    fn thirty_to_ninety_minutes_rounds_to_fifteen() {
        assert_eq!(wait_phrase(30.0 * MIN + 1.0), "about 30 minutes");
        assert_eq!(wait_phrase(37.4 * MIN), "about 30 minutes");
        assert_eq!(wait_phrase(37.5 * MIN), "about 45 minutes");
        assert_eq!(wait_phrase(52.5 * MIN), "about an hour");
        assert_eq!(wait_phrase(60.0 * MIN), "about an hour");
        assert_eq!(wait_phrase(70.0 * MIN), "about an hour and a quarter");
        assert_eq!(wait_phrase(82.5 * MIN), "about an hour and a half");
        assert_eq!(wait_phrase(90.0 * MIN), "about an hour and a half");
    }

    #[test]
    fn beyond_ninety_minutes_is_more_than_an_hour_and_a_half() {
        assert_eq!(
            wait_phrase(90.0 * MIN + 1.0),
            "more than an hour and a half"
        );
        assert_eq!(wait_phrase(4.0 * 3600.0), "more than an hour and a half");
    }

    #[test]
    fn a_growing_estimate_never_sounds_shorter() {
        let order = |phrase: &str| -> u32 {
            match phrase {
                "less than a minute" => 0,
                "about a minute" => 1,
                "about an hour" => 60,
                "about an hour and a quarter" => 75,
                "about an hour and a half" => 90,
                "more than an hour and a half" => 1000,
                p => p
                    .trim_start_matches("about ")
                    .trim_end_matches(" minutes")
                    .parse()
                    .unwrap_or_else(|_| panic!("unexpected phrase {p:?}")),
            }
        };
        let mut last = 0;
        for tenth_s in 0..(2 * 5400 * 10) {
            let s = f64::from(tenth_s) / 10.0;
            let now = order(&wait_phrase(s));
            assert!(now >= last, "{s}s said as {:?}", wait_phrase(s));
            last = now;
        }
    }

    #[test]
    fn wait_sentence_wraps_the_phrase() {
        assert_eq!(
            wait_sentence(5.0 * MIN),
            "Your estimated wait is about 5 minutes."
        );
        assert_eq!(
            wait_sentence(20.0),
            "Your estimated wait is less than a minute."
        );
    }

    fn zoned(text: &str) -> Zoned {
        text.parse().expect("zoned literal")
    }

    #[test]
    fn opening_later_today_tomorrow_and_this_week() {
        let now = zoned("2026-01-05T12:45:00[Europe/London]"); // Monday
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-05T13:30:00[Europe/London]")),
            "today at 1:30 PM"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-06T09:00:00[Europe/London]")),
            "tomorrow at 9 AM"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-10T12:00:00[Europe/London]")),
            "on Saturday at noon"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-12T00:05:00[Europe/London]")),
            "on Monday, January 12, at 12:05 AM"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-07T00:00:00[Europe/London]")),
            "on Wednesday, from midnight"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-06T00:00:00[Europe/London]")),
            "tomorrow, from midnight"
        );
        assert_eq!(
            opening_phrase(&now, &zoned("2026-01-20T00:00:00[Europe/London]")),
            "on Tuesday, January 20, from midnight"
        );
        assert_eq!(opening_phrase(&now, &now), "now");
    }

    #[test]
    fn opening_days_are_counted_in_the_queues_time_zone() {
        // 23:30 in New York is already tomorrow in London.
        let now = zoned("2026-01-05T23:30:00[America/New_York]");
        let opens = zoned("2026-01-06T09:00:00[Europe/London]");
        assert_eq!(opening_phrase(&now, &opens), "today at 9 AM");
    }
}
