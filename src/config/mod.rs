//! The centre's configuration file (TOML): queues, their routing settings, numbers, hours,
//! announcements, priority rules and the fallback used when Redis is out of reach. Secrets and
//! endpoints come from flags and the environment instead (see `cli`). Bad configuration fails
//! at start with a message naming the field.

mod check;
pub mod features;
pub mod hours;
pub mod language;
pub mod rollout;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::store::{QueueSettings, RecordMode, Skills, Strategy, WidenStep};
use hours::Hours;

/// The configuration `callq demo` and a bare `callq serve` run with.
pub const DEMO_TOML: &str = include_str!("demo.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentreConfig {
    #[serde(default = "default_centre")]
    pub centre: String,
    /// Queue for calls to numbers no queue or IVR claims.
    pub default_queue: String,
    pub queues: BTreeMap<String, QueueConfig>,
    #[serde(default)]
    pub priority: PriorityConfig,
    #[serde(default)]
    pub ivr: Option<IvrConfig>,
    #[serde(default)]
    pub fallback: FallbackConfig,
    /// The share of callers callq routes, and the legacy path of the others.
    #[serde(default)]
    pub rollout: rollout::RolloutConfig,
    /// The behaviours callq brings, each switchable at run time (see [`features`]).
    #[serde(default)]
    pub features: features::FeaturesConfig,
}

fn default_centre() -> String {
    "main".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Called numbers (E.164) that land in this queue.
    #[serde(default)]
    pub numbers: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default = "d_ring")]
    pub ring_timeout_s: u64,
    #[serde(default = "d_wrapup")]
    pub wrapup_s: u64,
    #[serde(default = "d_max_no_answer")]
    pub max_no_answer: u32,
    #[serde(default = "d_no_answer_delay")]
    pub no_answer_delay_s: u64,
    /// Rest after an offer the agent's device answered busy (declined it, or was busy);
    /// absent: `no_answer_delay_s`.
    #[serde(default)]
    pub busy_delay_s: Option<u64>,
    /// Rest after an offer Twilio could not ring through to the device; absent:
    /// `no_answer_delay_s`.
    #[serde(default)]
    pub failed_delay_s: Option<u64>,
    /// A caller who hangs up while in line and calls this queue again from the same number
    /// within this many seconds goes back in at the place they had, and is told so (absent:
    /// a new caller joins at the back).
    #[serde(default)]
    pub resume_within_s: Option<u64>,
    /// A call an agent transfers into this queue keeps its place (its original arrival
    /// rank); false: it joins at the back.
    #[serde(default = "d_true")]
    pub transfer_keeps_rank: bool,
    #[serde(default = "d_welcome")]
    pub welcome: String,
    /// Hold music played between announcements: one file, or short clips played in turn
    /// (a piece cut into parts continues where it left off). Empty: silence.
    #[serde(default = "d_hold_music", deserialize_with = "one_or_many")]
    pub hold_music: Vec<String>,
    /// The length of each `hold_music` clip. Given, callq plays as many clips as fill
    /// `announce_every_s`, so the caller hears their position again on time however long the
    /// piece is; absent, the files play whole between two announcements.
    #[serde(default)]
    pub hold_music_clip_s: Option<u64>,
    /// How often the caller hears their position again.
    #[serde(default = "d_announce")]
    pub announce_every_s: u64,
    /// Offer a callback once the caller has waited this long (absent: never).
    #[serde(default)]
    pub callback_after_s: Option<u64>,
    /// After this long the caller leaves for the overflow action (absent: no limit).
    #[serde(default)]
    pub max_wait_s: Option<u64>,
    /// A caller who finds this many waiting ahead of them takes the overflow action at once
    /// (absent: no limit).
    #[serde(default)]
    pub max_waiting: Option<u64>,
    #[serde(default)]
    pub overflow: Option<Action>,
    /// Where a waiting caller goes when no agent of the queue is logged in (every one
    /// offline), once they have waited `no_agents_after_s` (absent: they keep waiting, told
    /// that no wait can be estimated).
    #[serde(default)]
    pub no_agents: Option<Action>,
    #[serde(default = "d_no_agents_after")]
    pub no_agents_after_s: u64,
    #[serde(default)]
    pub hours: Option<Hours>,
    #[serde(default = "d_closed")]
    pub closed_message: String,
    #[serde(default)]
    pub after_hours: Option<Action>,
    /// How many more times a callback whose customer did not answer is tried.
    #[serde(default = "d_callback_retries")]
    pub callback_retries: u32,
    /// How long such a callback waits before it is tried again.
    #[serde(default = "d_callback_retry_delay")]
    pub callback_retry_delay_s: u64,
    /// How long a connected call may go without word from Twilio before a worker asks
    /// Twilio whether it still goes on (its end callbacks may have been lost).
    #[serde(default = "d_check_after")]
    pub check_after_s: u64,
    /// `fewest_calls` and `least_talk_time` compare agents' work in this queue with this
    /// half-life: a call answered an hour ago counts half, two hours ago a quarter.
    #[serde(default = "d_half_life")]
    pub recent_half_life_s: u64,
    /// The language callers of this queue hear (a BCP 47 tag for `<Say language>`, e.g.
    /// `en-US`, `es-ES`; its language, English or Spanish, picks callq's own phrases).
    /// Absent: English, said with Twilio's default language.
    #[serde(default)]
    pub language: Option<String>,
    /// The `<Say voice>` (e.g. `Polly.Lucia`; absent: Twilio's default for the language).
    #[serde(default)]
    pub voice: Option<String>,
    /// Whether Twilio records the agent's leg of this queue's calls: one of `<Dial record>`'s
    /// values, `do-not-record` (the default), `record-from-answer`, `record-from-ringing`,
    /// `record-from-answer-dual` (caller and agent on separate channels) or
    /// `record-from-ringing-dual`.
    #[serde(default = "d_record")]
    pub record: String,
    /// Skills with minimum levels (1-5) every call of this queue requires, e.g.
    /// `{ billing = 3 }`; a call given skills by its IVR choice or a priority rule requires
    /// those instead. Absent: any agent of the queue.
    #[serde(default)]
    pub skills: Skills,
    /// How a call's reach widens as it waits (`[[queues.<name>.widen]]`), in order of
    /// `after_s`.
    #[serde(default)]
    pub widen: Vec<WidenConfig>,
}

/// One widening step: once a call has waited `after_s`, it accepts more agents. Each field
/// given widens; the steps add up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidenConfig {
    pub after_s: u64,
    /// Every required skill is accepted from this level on.
    #[serde(default)]
    pub min_level: Option<u8>,
    /// Agents of tiers up to this one may take the call. A queue with such a step offers its
    /// calls to tier 1 only until the step is due.
    #[serde(default)]
    pub tiers: Option<u32>,
    /// No skill is required any more.
    #[serde(default)]
    pub any_skill: bool,
    /// The ready agents of this queue may take the call too.
    #[serde(default)]
    pub queue: Option<String>,
}

impl WidenConfig {
    fn step(&self) -> WidenStep {
        WidenStep {
            after: Duration::from_secs(self.after_s),
            min_level: self.min_level,
            tiers: self.tiers,
            any_skill: self.any_skill,
            queue: self.queue.clone(),
        }
    }
}

fn d_true() -> bool {
    true
}

fn d_record() -> String {
    RecordMode::DoNotRecord.as_str().into()
}

fn d_no_agents_after() -> u64 {
    30
}
fn d_callback_retries() -> u32 {
    2
}
fn d_callback_retry_delay() -> u64 {
    300
}
fn d_check_after() -> u64 {
    300
}
fn d_half_life() -> u64 {
    3600
}
fn d_ring() -> u64 {
    20
}
fn d_wrapup() -> u64 {
    10
}
fn d_max_no_answer() -> u32 {
    3
}
fn d_no_answer_delay() -> u64 {
    5
}
fn d_welcome() -> String {
    "Thanks for calling. Please hold for the next available agent.".into()
}
fn d_hold_music() -> Vec<String> {
    vec!["http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3".into()]
}

/// A string or a list of strings, as a list without blank entries (`""` is the empty list).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let all = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    Ok(all
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}
fn d_announce() -> u64 {
    30
}
fn d_closed() -> String {
    "We are closed right now.".into()
}

/// Where a caller goes when a queue is closed, its max wait is reached or nobody is logged in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Leave a message (`<Record>`).
    Voicemail,
    /// Dial a number.
    Dial { number: String },
    /// Move to another queue.
    Queue { queue: String },
    /// Ask for a callback.
    Callback,
    /// Say goodbye and hang up.
    Hangup,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityConfig {
    /// Caller numbers served first.
    #[serde(default)]
    pub vip: Vec<String>,
    #[serde(default = "d_vip_boost")]
    pub vip_boost_s: u64,
    #[serde(default)]
    pub rules: Vec<PriorityRule>,
}

fn d_vip_boost() -> u64 {
    120
}

/// A boost for callers whose number starts with `from_prefix` (and optionally only in one
/// queue). The boost moves the caller's rank earlier by a bounded time, so nobody starves:
/// an ordinary caller who has waited longer than the boost is still served first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRule {
    pub from_prefix: String,
    pub boost_s: u64,
    #[serde(default)]
    pub queue: Option<String>,
    /// Skills the matching callers' calls require (instead of their queue's).
    #[serde(default)]
    pub skills: Skills,
}

/// An IVR menu choice: a queue, or a queue with the skills its calls require, e.g.
/// `{ queue = "support", skills = { billing = 3 } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IvrChoice {
    Queue(String),
    Routed {
        queue: String,
        #[serde(default)]
        skills: Skills,
    },
}

impl IvrChoice {
    pub fn queue(&self) -> &str {
        match self {
            IvrChoice::Queue(q) | IvrChoice::Routed { queue: q, .. } => q,
        }
    }

    /// The skills the choice gives its calls (empty: the queue's).
    pub fn skills(&self) -> Option<&Skills> {
        match self {
            IvrChoice::Routed { skills, .. } if !skills.is_empty() => Some(skills),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Called numbers that get the menu.
    pub numbers: Vec<String>,
    pub prompt: String,
    /// digit -> queue (or queue and skills)
    pub options: BTreeMap<String, IvrChoice>,
    /// The menu's language and voice, as a queue's.
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub voice: Option<String>,
}

/// What a caller gets when Redis is out of reach. Without a number, the caller holds in the
/// queue's Twilio queue with callq's wait URL, and is taken into callq's line by the first
/// wait request that finds Redis back, at the time they first arrived.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// Dial this number instead (a backup line that does not need callq).
    #[serde(default)]
    pub number: Option<String>,
}

impl CentreConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parse and check a configuration; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: CentreConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        check::centre(&cfg)?;
        Ok(cfg)
    }

    pub fn demo() -> Self {
        // The embedded default is checked by a unit test below; fall back to a minimal
        // centre rather than panic if it ever stopped parsing.
        Self::from_toml(DEMO_TOML, "embedded demo config").unwrap_or_else(|_| Self::minimal())
    }

    fn minimal() -> Self {
        let mut queues = BTreeMap::new();
        queues.insert(
            "main".to_string(),
            toml::from_str::<QueueConfig>("").unwrap_or_else(|_| unreachable!()),
        );
        CentreConfig {
            centre: "main".into(),
            default_queue: "main".into(),
            queues,
            priority: PriorityConfig::default(),
            ivr: None,
            fallback: FallbackConfig::default(),
            rollout: rollout::RolloutConfig::default(),
            features: features::FeaturesConfig::default(),
        }
    }

    /// The routing settings the store keeps for each queue.
    pub fn queue_settings(&self) -> Vec<QueueSettings> {
        self.queues
            .iter()
            .map(|(name, q)| QueueSettings {
                name: name.clone(),
                strategy: q.strategy,
                ring_timeout: Duration::from_secs(q.ring_timeout_s),
                wrapup: Duration::from_secs(q.wrapup_s),
                max_no_answer: q.max_no_answer,
                no_answer_delay: Duration::from_secs(q.no_answer_delay_s),
                callback_retries: q.callback_retries,
                callback_retry_delay: Duration::from_secs(q.callback_retry_delay_s),
                check_after: Duration::from_secs(q.check_after_s),
                fallback: self.features.fallback,
                half_life: Duration::from_secs(q.recent_half_life_s),
                // checked when the file was read (`check.rs`)
                record: q.record.parse().unwrap_or_default(),
                skills: q.skills.clone(),
                widen: {
                    let mut steps: Vec<WidenStep> = q.widen.iter().map(WidenConfig::step).collect();
                    steps.sort_by_key(|s| s.after);
                    steps
                },
                calls_carry_skills: self.calls_carry_skills(name),
                busy_delay: q.busy_delay_s.map(Duration::from_secs),
                failed_delay: q.failed_delay_s.map(Duration::from_secs),
                resume_within: q.resume_within_s.map(Duration::from_secs),
                transfer_keeps_rank: q.transfer_keeps_rank,
            })
            .collect()
    }

    /// Whether some IVR choice or priority rule gives calls of `queue` their own skills.
    fn calls_carry_skills(&self, queue: &str) -> bool {
        let by_ivr = self.ivr.as_ref().is_some_and(|ivr| {
            ivr.options
                .values()
                .any(|c| c.queue() == queue && c.skills().is_some())
        });
        let by_rule = self
            .priority
            .rules
            .iter()
            .any(|r| !r.skills.is_empty() && r.queue.as_deref().is_none_or(|q| q == queue));
        by_ivr || by_rule
    }

    /// The skills a call from `from` entering `queue` requires of its own: those of the IVR
    /// choice it came through and of every priority rule it matches (a skill in several at
    /// the highest level). Empty: the queue's.
    pub fn call_skills(&self, from: &str, queue: &str, choice: Option<&Skills>) -> Skills {
        let mut skills = choice.cloned().unwrap_or_default();
        for r in &self.priority.rules {
            let queue_ok = r.queue.as_deref().is_none_or(|q| q == queue);
            if queue_ok && !r.skills.is_empty() && from.starts_with(&r.from_prefix) {
                skills = skills.merged(&r.skills);
            }
        }
        skills
    }

    /// The queue a call to `to` lands in, unless the number has the IVR menu.
    pub fn queue_for_number(&self, to: &str) -> &str {
        self.queues
            .iter()
            .find(|(_, q)| q.numbers.iter().any(|n| n == to))
            .map(|(name, _)| name.as_str())
            .unwrap_or(&self.default_queue)
    }

    /// The priority boost for a caller from `from` entering `queue` (largest rule wins).
    pub fn priority_boost(&self, from: &str, queue: &str) -> Duration {
        let mut boost = 0;
        if self.priority.vip.iter().any(|v| v == from) {
            boost = self.priority.vip_boost_s;
        }
        for r in &self.priority.rules {
            let queue_ok = r.queue.as_deref().is_none_or(|q| q == queue);
            if queue_ok && from.starts_with(&r.from_prefix) {
                boost = boost.max(r.boost_s);
            }
        }
        Duration::from_secs(boost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_demo_config_is_valid() {
        let cfg = CentreConfig::from_toml(DEMO_TOML, "demo").expect("demo config parses");
        assert_eq!(cfg.queues.len(), 3);
        assert_eq!(cfg.queues["soporte"].language.as_deref(), Some("es-ES"));
        assert_eq!(cfg.queue_for_number("+15005550002"), "support");
        assert_eq!(cfg.queue_for_number("+19999999999"), "sales");
    }

    #[test]
    fn readme_shows_the_embedded_config_as_it_is() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&format!("```toml\n{DEMO_TOML}```\n")),
            "README.md's configuration block differs from src/config/demo.toml: copy the file in"
        );
    }

    #[test]
    fn hold_music_is_one_file_or_a_list_of_clips() {
        let one: QueueConfig =
            toml::from_str("hold_music = \" https://a.example/m.mp3 \"").expect("one file parses");
        assert_eq!(one.hold_music, ["https://a.example/m.mp3"]);
        assert_eq!(one.hold_music_clip_s, None);
        let clips: QueueConfig = toml::from_str(
            "hold_music = [\"https://a.example/1.mp3\", \"\", \"https://a.example/2.mp3\"]\nhold_music_clip_s = 10",
        )
        .expect("clips parse");
        assert_eq!(
            clips.hold_music,
            ["https://a.example/1.mp3", "https://a.example/2.mp3"]
        );
        assert_eq!(clips.hold_music_clip_s, Some(10));
        let silent: QueueConfig = toml::from_str("hold_music = \"\"").expect("silence parses");
        assert!(silent.hold_music.is_empty());
        let default: QueueConfig = toml::from_str("").expect("defaults parse");
        assert_eq!(default.hold_music.len(), 1, "Twilio's music by default");
        assert!(toml::from_str::<QueueConfig>("hold_music = 3").is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let bad = DEMO_TOML.replace("ring_timeout_s = 15", "ring_timeout_s = 0");
        let err = CentreConfig::from_toml(&bad, "t")
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("ring_timeout_s"), "{err}");
        let bad = DEMO_TOML.replace("default_queue = \"sales\"", "default_queue = \"nope\"");
        let err = CentreConfig::from_toml(&bad, "t")
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("default_queue"), "{err}");
        let bad = DEMO_TOML.replace("strategy = \"fewest_calls\"", "strategy = \"fastest\"");
        let err = CentreConfig::from_toml(&bad, "t")
            .expect_err("rejected")
            .to_string();
        assert!(err.contains("strategy") || err.contains("fastest"), "{err}");
        let bad = format!("{DEMO_TOML}\nsurprise = 1\n");
        assert!(CentreConfig::from_toml(&bad, "t").is_err());
    }

    #[test]
    fn a_queue_may_ring_all_its_agents_at_once() {
        let toml = DEMO_TOML.replacen("strategy = \"longest_idle\"", "strategy = \"ring_all\"", 1);
        let cfg = CentreConfig::from_toml(&toml, "t").expect("ring_all accepted");
        assert_eq!(cfg.queues["sales"].strategy, Strategy::RingAll);
        assert_eq!(Strategy::RingAll.as_str(), "ring_all");
    }

    #[test]
    fn vip_and_rules_boost_priority() {
        let cfg = CentreConfig::demo();
        assert_eq!(
            cfg.priority_boost("+14155550100", "sales"),
            Duration::from_secs(120)
        );
        assert_eq!(
            cfg.priority_boost("+18005550199", "sales"),
            Duration::from_secs(30)
        );
        assert_eq!(cfg.priority_boost("+447700900000", "sales"), Duration::ZERO);
    }
}
