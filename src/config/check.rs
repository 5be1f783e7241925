//! Checking a centre's configuration before anything runs with it: every number within the
//! range callq can route with, every phone number E.164, every URL absolute http(s), every
//! spoken text within Twilio's `<Say>` limit, every reference to a queue pointing at one.
//! The first problem found is returned, naming its field (`queues.sales.wrapup_s: …`).

use std::collections::BTreeMap;

use super::rollout::{LegacyPath, RolloutConfig};
use super::{invalid, Action, CentreConfig, ConfigError, QueueConfig};
use crate::store::{check_name, RecordMode, Skills};

/// Twilio's limit on the text of one `<Say>`, in bytes.
const MAX_SAY_BYTES: usize = 4_096;
/// A day: the longest wait, delay or boost that makes sense for a phone call.
const DAY_S: u64 = 86_400;
/// An hour: the longest wrap-up or rest after a miss.
const HOUR_S: u64 = 3_600;

/// Check the whole configuration.
pub(super) fn centre(cfg: &CentreConfig) -> Result<(), ConfigError> {
    check_name("centre", &cfg.centre).map_err(|e| invalid("centre", e.to_string()))?;
    if cfg.queues.is_empty() {
        return Err(invalid("queues", "at least one queue is needed"));
    }
    if !cfg.queues.contains_key(&cfg.default_queue) {
        return Err(invalid(
            "default_queue",
            format!("no queue named {:?}", cfg.default_queue),
        ));
    }
    let mut numbers: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, q) in &cfg.queues {
        queue(cfg, name, q)?;
        for n in &q.numbers {
            if let Some(other) = numbers.insert(n, name) {
                return Err(invalid(
                    format!("queues.{name}.numbers"),
                    format!("{n} is also in queue {other}"),
                ));
            }
        }
    }
    rollout(&cfg.rollout)?;
    let p = &cfg.priority;
    range("priority.vip_boost_s", p.vip_boost_s, 0, DAY_S, "seconds")?;
    for (i, n) in p.vip.iter().enumerate() {
        e164(&format!("priority.vip[{i}]"), n)?;
    }
    for (i, r) in p.rules.iter().enumerate() {
        let f = |field: &str| format!("priority.rules[{i}].{field}");
        range(&f("boost_s"), r.boost_s, 0, DAY_S, "seconds")?;
        let digits = r.from_prefix.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                f("from_prefix"),
                "must be '+' and up to 15 digits (the start of an E.164 number)",
            ));
        }
        if let Some(q) = &r.queue {
            if !cfg.queues.contains_key(q) {
                return Err(invalid(f("queue"), format!("no queue named {q:?}")));
            }
        }
        skills_ok(&f("skills"), &r.skills)?;
    }
    if let Some(ivr) = &cfg.ivr {
        for (i, n) in ivr.numbers.iter().enumerate() {
            e164(&format!("ivr.numbers[{i}]"), n)?;
        }
        say("ivr.prompt", &ivr.prompt, false)?;
        speech("ivr", ivr.language.as_deref(), ivr.voice.as_deref())?;
        for (digit, choice) in &ivr.options {
            let q = choice.queue();
            if digit.len() != 1 || !digit.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid(
                    format!("ivr.options.{digit}"),
                    "keys are single digits",
                ));
            }
            if !cfg.queues.contains_key(q) {
                return Err(invalid(
                    format!("ivr.options.{digit}"),
                    format!("no queue named {q:?}"),
                ));
            }
            if let Some(skills) = choice.skills() {
                skills_ok(&format!("ivr.options.{digit}.skills"), skills)?;
            }
        }
    }
    if let Some(n) = &cfg.fallback.number {
        e164("fallback.number", n)?;
    }
    Ok(())
}

fn queue(cfg: &CentreConfig, name: &str, q: &QueueConfig) -> Result<(), ConfigError> {
    let f = |field: &str| format!("queues.{name}.{field}");
    check_name("queue", name).map_err(|e| invalid(format!("queues.{name}"), e.to_string()))?;
    range(&f("ring_timeout_s"), q.ring_timeout_s, 1, 600, "seconds")?;
    range(&f("wrapup_s"), q.wrapup_s, 0, HOUR_S, "seconds")?;
    range(
        &f("max_no_answer"),
        u64::from(q.max_no_answer),
        1,
        100,
        "misses",
    )?;
    range(
        &f("no_answer_delay_s"),
        q.no_answer_delay_s,
        0,
        HOUR_S,
        "seconds",
    )?;
    if let Some(within) = q.resume_within_s {
        range(&f("resume_within_s"), within, 1, DAY_S, "seconds")?;
    }
    for (field, delay) in [
        ("busy_delay_s", q.busy_delay_s),
        ("failed_delay_s", q.failed_delay_s),
    ] {
        if let Some(d) = delay {
            range(&f(field), d, 0, HOUR_S, "seconds")?;
        }
    }
    range(
        &f("announce_every_s"),
        q.announce_every_s,
        5,
        600,
        "seconds",
    )?;
    if let Some(after) = q.callback_after_s {
        range(&f("callback_after_s"), after, 0, DAY_S, "seconds")?;
    }
    if let Some(max) = q.max_wait_s {
        range(&f("max_wait_s"), max, 0, DAY_S, "seconds")?;
    }
    if let Some(max) = q.max_waiting {
        range(&f("max_waiting"), max, 0, 100_000, "callers")?;
        if q.overflow.is_none() {
            return Err(invalid(
                f("max_waiting"),
                "turns callers to the overflow action: set `overflow` too",
            ));
        }
    }
    range(
        &f("no_agents_after_s"),
        q.no_agents_after_s,
        0,
        DAY_S,
        "seconds",
    )?;
    range(
        &f("callback_retries"),
        u64::from(q.callback_retries),
        0,
        10,
        "retries",
    )?;
    range(
        &f("callback_retry_delay_s"),
        q.callback_retry_delay_s,
        0,
        DAY_S,
        "seconds",
    )?;
    range(&f("check_after_s"), q.check_after_s, 10, DAY_S, "seconds")?;
    range(
        &f("recent_half_life_s"),
        q.recent_half_life_s,
        60,
        7 * DAY_S,
        "seconds",
    )?;
    if q.record.parse::<RecordMode>().is_err() {
        let allowed: Vec<&str> = RecordMode::ALL.iter().map(|m| m.as_str()).collect();
        return Err(invalid(
            f("record"),
            format!("{:?} is not one of {}", q.record, allowed.join(", ")),
        ));
    }
    for (i, n) in q.numbers.iter().enumerate() {
        e164(&format!("queues.{name}.numbers[{i}]"), n)?;
    }
    say(&f("welcome"), &q.welcome, true)?;
    speech(
        &format!("queues.{name}"),
        q.language.as_deref(),
        q.voice.as_deref(),
    )?;
    say(&f("closed_message"), &q.closed_message, true)?;
    for (i, music) in q.hold_music.iter().enumerate() {
        let field = match q.hold_music.len() {
            1 => f("hold_music"),
            _ => format!("queues.{name}.hold_music[{i}]"),
        };
        http_url(&field, music)?;
    }
    if let Some(clip) = q.hold_music_clip_s {
        range(&f("hold_music_clip_s"), clip, 1, 600, "seconds")?;
    }
    for (field, action) in [
        ("overflow", &q.overflow),
        ("after_hours", &q.after_hours),
        ("no_agents", &q.no_agents),
    ] {
        match action {
            Some(Action::Queue { queue }) if !cfg.queues.contains_key(queue) || queue == name => {
                return Err(invalid(f(field), format!("no other queue named {queue:?}")));
            }
            Some(Action::Dial { number }) => e164(&format!("{}.number", f(field)), number)?,
            _ => {}
        }
    }
    if let Some(h) = &q.hours {
        h.validate()
            .map_err(|e| invalid(f("hours"), e.to_string()))?;
    }
    skills_ok(&f("skills"), &q.skills)?;
    for (i, w) in q.widen.iter().enumerate() {
        let f = |field: &str| format!("queues.{name}.widen[{i}].{field}");
        range(&f("after_s"), w.after_s, 0, DAY_S, "seconds")?;
        if let Some(level) = w.min_level {
            range(&f("min_level"), u64::from(level), 1, 5, "(skill level)")?;
        }
        if let Some(tiers) = w.tiers {
            range(&f("tiers"), u64::from(tiers), 1, 9, "(tier)")?;
        }
        if let Some(other) = &w.queue {
            if !cfg.queues.contains_key(other) || other == name {
                return Err(invalid(
                    f("queue"),
                    format!("no other queue named {other:?}"),
                ));
            }
        }
        if w.min_level.is_none() && w.tiers.is_none() && !w.any_skill && w.queue.is_none() {
            return Err(invalid(
                format!("queues.{name}.widen[{i}]"),
                "widens nothing: give min_level, tiers, any_skill or queue",
            ));
        }
    }
    Ok(())
}

/// Skills with levels: names usable in keys, levels 1-5.
fn skills_ok(field: &str, skills: &Skills) -> Result<(), ConfigError> {
    skills.check().map_err(|e| invalid(field, e.to_string()))
}

/// `[rollout]`: a share in percent, and a legacy path Twilio can follow whenever the share
/// is below 100.
fn rollout(r: &RolloutConfig) -> Result<(), ConfigError> {
    range(
        "rollout.share_pct",
        u64::from(r.share_pct),
        0,
        100,
        "percent",
    )?;
    let ring = |timeout_s: u32| {
        range(
            "rollout.legacy.timeout_s",
            u64::from(timeout_s),
            5,
            600,
            "seconds",
        )
    };
    match &r.legacy {
        None if r.share_pct < 100 => {
            return Err(invalid(
                "rollout.legacy",
                "required when share_pct is below 100: where the other callers go",
            ))
        }
        None => {}
        Some(LegacyPath::Redirect { url }) => http_url("rollout.legacy.url", url)?,
        Some(LegacyPath::Dial { number, timeout_s }) => {
            e164("rollout.legacy.number", number)?;
            ring(*timeout_s)?;
        }
        Some(LegacyPath::Client {
            identity,
            timeout_s,
        }) => {
            if identity.trim().is_empty() || identity.len() > 121 {
                return Err(invalid(
                    "rollout.legacy.identity",
                    "must be a Voice SDK identity of 1 to 121 bytes",
                ));
            }
            ring(*timeout_s)?;
        }
    }
    Ok(())
}

fn range(field: &str, value: u64, min: u64, max: u64, unit: &str) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be {min} to {max} {unit}, got {value}"),
        ))
    }
}

/// An E.164 number: `+`, then 2 to 15 digits, the first not 0.
fn e164(field: &str, n: &str) -> Result<(), ConfigError> {
    let digits = n.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{n:?} is not an E.164 number (+ and up to 15 digits, e.g. +14155550100)"),
        ))
    }
}

/// An absolute http(s) URL Twilio can fetch.
/// A `language` callq has phrases for (see `webhooks::speech`) and a plain `voice` name.
fn speech(at: &str, language: Option<&str>, voice: Option<&str>) -> Result<(), ConfigError> {
    if let Some(language) = language.filter(|l| crate::config::language::Lang::of(l).is_none()) {
        return Err(invalid(
            format!("{at}.language"),
            format!(
                "callq speaks {}: a tag such as en-US or es-ES, not {language:?}",
                crate::config::language::Lang::SPOKEN
            ),
        ));
    }
    if let Some(v) = voice {
        let plain = !v.is_empty()
            && v.len() <= 64
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain {
            return Err(invalid(
                format!("{at}.voice"),
                "a Twilio voice name such as Polly.Lucia or Google.es-ES-Standard-A",
            ));
        }
    }
    Ok(())
}

fn http_url(field: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(
            field,
            format!("{url:?} is not an absolute http(s) URL"),
        )),
    }
}

/// Text for `<Say>`: within Twilio's limit; `may_be_empty` for texts that can be left out.
fn say(field: &str, text: &str, may_be_empty: bool) -> Result<(), ConfigError> {
    if !may_be_empty && text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.len() > MAX_SAY_BYTES {
        return Err(invalid(
            field,
            format!(
                "is {} bytes; Twilio says at most {MAX_SAY_BYTES} in one <Say>",
                text.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{CentreConfig, DEMO_TOML};

    /// A bad value, where to put it in the demo config, and the field the error must name.
    struct Bad {
        replace: &'static str,
        with: &'static str,
        field: &'static str,
    }

    #[test]
    fn every_bad_value_is_refused_naming_its_field() {
        let cases = [
            Bad {
                replace: "ring_timeout_s = 15",
                with: "ring_timeout_s = 0",
                field: "queues.sales.ring_timeout_s",
            },
            Bad {
                replace: "wrapup_s = 5\nmax_no_answer = 3\nno_answer_delay_s = 5\nwelcome = \"Thanks for calling sales.",
                with: "wrapup_s = 18446744073709551615\nmax_no_answer = 3\nno_answer_delay_s = 5\nwelcome = \"Thanks for calling sales.",
                field: "queues.sales.wrapup_s",
            },
            Bad {
                replace: "vip_boost_s = 120",
                with: "vip_boost_s = 1000000000000",
                field: "priority.vip_boost_s",
            },
            Bad {
                replace: "boost_s = 30",
                with: "boost_s = 999999",
                field: "priority.rules[0].boost_s",
            },
            Bad {
                replace: "from_prefix = \"+1800\"",
                with: "from_prefix = \"1800\"",
                field: "priority.rules[0].from_prefix",
            },
            Bad {
                replace: "vip = [\"+14155550100\"]",
                with: "vip = [\"4155550100\"]",
                field: "priority.vip[0]",
            },
            Bad {
                replace: "numbers = [\"+15005550001\"]",
                with: "numbers = [\"+1 500 555 0001\"]",
                field: "queues.sales.numbers[0]",
            },
            Bad {
                replace: "max_wait_s = 900",
                with: "max_wait_s = 100000",
                field: "queues.sales.max_wait_s",
            },
            Bad {
                replace: "overflow = { action = \"voicemail\" }",
                with: "max_waiting = 5",
                field: "queues.sales.max_waiting",
            },
            Bad {
                replace: "max_wait_s = 900",
                with: "max_wait_s = 900\nmax_waiting = 1000000",
                field: "queues.sales.max_waiting",
            },
            Bad {
                replace: "wrapup_s = 5",
                with: "wrapup_s = 5\nrecent_half_life_s = 10",
                field: "queues.sales.recent_half_life_s",
            },
            Bad {
                replace: "wrapup_s = 5",
                with: "wrapup_s = 5\nrecord = \"true\"",
                field: "queues.sales.record",
            },
            Bad {
                replace: "callback_retries = 2",
                with: "callback_retries = 50",
                field: "queues.sales.callback_retries",
            },
            Bad {
                replace: "strategy = \"longest_idle\"",
                with: "strategy = \"longest_idle\"\nhold_music = \"music.mp3\"",
                field: "queues.sales.hold_music",
            },
            Bad {
                replace: "strategy = \"longest_idle\"",
                with: "strategy = \"longest_idle\"\nhold_music = [\"https://a.example/1.mp3\", \"2.mp3\"]",
                field: "queues.sales.hold_music[1]",
            },
            Bad {
                replace: "strategy = \"longest_idle\"",
                with: "strategy = \"longest_idle\"\nhold_music_clip_s = 0",
                field: "queues.sales.hold_music_clip_s",
            },
            Bad {
                replace: "strategy = \"longest_idle\"",
                with: "strategy = \"longest_idle\"\nannounce_every_s = 100000",
                field: "queues.sales.announce_every_s",
            },
            Bad {
                replace: "overflow = { action = \"voicemail\" }",
                with: "overflow = { action = \"dial\", number = \"00441234\" }",
                field: "queues.sales.overflow.number",
            },
            Bad {
                replace: "overflow = { action = \"queue\", queue = \"sales\" }",
                with: "overflow = { action = \"queue\", queue = \"sales\" }\n[fallback]\nnumber = \"call me\"",
                field: "fallback.number",
            },
            Bad {
                replace: "overflow = { action = \"voicemail\" }",
                with: "overflow = { action = \"voicemail\" }\nno_agents = { action = \"queue\", queue = \"sales\" }",
                field: "queues.sales.no_agents",
            },
            Bad {
                replace: "overflow = { action = \"voicemail\" }",
                with: "overflow = { action = \"voicemail\" }\nno_agents_after_s = 100000",
                field: "queues.sales.no_agents_after_s",
            },
            Bad {
                replace: "[priority]",
                with: "[rollout]\nshare_pct = 150\n[priority]",
                field: "rollout.share_pct",
            },
            Bad {
                replace: "[priority]",
                with: "[rollout]\nshare_pct = 10\n[priority]",
                field: "rollout.legacy",
            },
            Bad {
                replace: "[priority]",
                with: "[rollout]\nshare_pct = 10\nlegacy = { action = \"redirect\", url = \"/voice\" }\n[priority]",
                field: "rollout.legacy.url",
            },
            Bad {
                replace: "[priority]",
                with: "[rollout]\nlegacy = { action = \"dial\", number = \"555-0100\" }\n[priority]",
                field: "rollout.legacy.number",
            },
            Bad {
                replace: "min_level = 1                   # every required skill from level 1",
                with: "min_level = 7",
                field: "queues.support.widen[0].min_level",
            },
            Bad {
                replace: "any_skill = true                # no skill required any more",
                with: "any_skill = false",
                field: "queues.support.widen[1]",
            },
            Bad {
                replace: "any_skill = true                # no skill required any more",
                with: "queue = \"nowhere\"",
                field: "queues.support.widen[1].queue",
            },
            Bad {
                replace: "skills = { billing = 2 } }",
                with: "skills = { billing = 9 } }",
                field: "ivr.options.3.skills",
            },
            Bad {
                replace: "boost_s = 30 ",
                with: "skills = { \"no way\" = 2 }\nboost_s = 30 ",
                field: "priority.rules[0].skills",
            },
            Bad {
                replace: "prompt = \"Thanks for calling. For sales, press 1. For support, press 2. For billing, press 3.\"",
                with: "prompt = \"\"",
                field: "ivr.prompt",
            },
        ];
        for case in cases {
            assert!(
                DEMO_TOML.contains(case.replace),
                "the demo config has {:?}",
                case.replace
            );
            let bad = DEMO_TOML.replacen(case.replace, case.with, 1);
            let err = match CentreConfig::from_toml(&bad, "t") {
                Ok(_) => panic!("{} accepted", case.field),
                Err(e) => e.to_string(),
            };
            assert!(
                err.starts_with(&format!("{}: ", case.field)),
                "{}: {err}",
                case.field
            );
        }
    }

    #[test]
    fn spoken_text_is_held_to_twilios_say_limit() {
        let long = "word ".repeat(1000);
        let bad = DEMO_TOML.replacen(
            "welcome = \"Thanks for calling sales.",
            &format!("welcome = \"{long}"),
            1,
        );
        let err = CentreConfig::from_toml(&bad, "t")
            .map(|_| ())
            .expect_err("refused");
        assert!(
            err.to_string().starts_with("queues.sales.welcome: "),
            "{err}"
        );
    }
}
