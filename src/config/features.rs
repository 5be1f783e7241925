//! `[features]`: the behaviours callq brings, each one a switch with a safe "off" that still
//! answers Twilio correctly, so a centre can turn one off during an incident without a
//! deploy. The file gives the defaults; an admin overrides any of them at run time
//! (`PUT /v1/admin/features/{name}`), stored in Redis so every replica follows within a
//! second.
//!
//! | switch | on | off |
//! |---|---|---|
//! | `callbacks` | waiting callers are offered a callback after the queue's `callback_after_s` | no new callback offers (requests already taken are still served) |
//! | `priority` | `[priority]` rules move callers ahead | every caller enters at the same priority, in arrival order |
//! | `device_check` | an agent is offered calls only while their Voice SDK device is registered | a live heartbeat is enough, whatever the device says |
//! | `fallback` | an unanswered offer goes on to the next agent | one attempt, as before callq: an unanswered offer ends the call's time in line with the queue's overflow action (or a goodbye) |

use serde::Deserialize;

/// `[features]`: every switch on unless the file says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    #[serde(default = "on")]
    pub callbacks: bool,
    #[serde(default = "on")]
    pub priority: bool,
    #[serde(default = "on")]
    pub device_check: bool,
    #[serde(default = "on")]
    pub fallback: bool,
}

fn on() -> bool {
    true
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            callbacks: true,
            priority: true,
            device_check: true,
            fallback: true,
        }
    }
}

impl FeaturesConfig {
    /// The file's setting of `feature`.
    pub fn get(&self, feature: Feature) -> bool {
        match feature {
            Feature::Callbacks => self.callbacks,
            Feature::Priority => self.priority,
            Feature::DeviceCheck => self.device_check,
            Feature::Fallback => self.fallback,
        }
    }

    /// These settings with `overrides` (an admin's, from Redis) applied.
    pub fn with(mut self, overrides: &[(Feature, bool)]) -> Self {
        for (f, on) in overrides {
            match f {
                Feature::Callbacks => self.callbacks = *on,
                Feature::Priority => self.priority = *on,
                Feature::DeviceCheck => self.device_check = *on,
                Feature::Fallback => self.fallback = *on,
            }
        }
        self
    }
}

/// One switch of `[features]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    Callbacks,
    Priority,
    DeviceCheck,
    Fallback,
}

impl Feature {
    pub const ALL: [Feature; 4] = [
        Feature::Callbacks,
        Feature::Priority,
        Feature::DeviceCheck,
        Feature::Fallback,
    ];

    /// Its name in the file, the admin API and Redis (`feature:<name>` in the switches hash).
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Callbacks => "callbacks",
            Feature::Priority => "priority",
            Feature::DeviceCheck => "device_check",
            Feature::Fallback => "fallback",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// What the switch does, on and off (for the admin API and `callq inspect`).
    pub fn describe(self) -> &'static str {
        match self {
            Feature::Callbacks => "offer waiting callers a callback (off: no new offers; requests taken are served)",
            Feature::Priority => "apply [priority] rules (off: every caller in arrival order)",
            Feature::DeviceCheck => "offer calls only to agents whose Voice device is registered (off: a live heartbeat is enough)",
            Feature::Fallback => "offer an unanswered call to the next agent (off: one attempt, then the queue's overflow action)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for f in Feature::ALL {
            assert_eq!(Feature::parse(f.as_str()), Some(f));
        }
        assert_eq!(Feature::parse("Callbacks"), None);
        assert_eq!(Feature::parse(""), None);
    }

    #[test]
    fn overrides_win_over_the_file() {
        let file = FeaturesConfig {
            callbacks: false,
            ..FeaturesConfig::default()
        };
        let now = file.with(&[(Feature::Callbacks, true), (Feature::Fallback, false)]);
        assert!(now.callbacks);
        assert!(!now.fallback);
        assert!(now.priority && now.device_check);
        assert!(!file.get(Feature::Callbacks));
    }

    #[test]
    fn every_switch_defaults_on() {
        let f: FeaturesConfig = toml::from_str("").expect("empty [features]");
        assert!(Feature::ALL.into_iter().all(|x| f.get(x)));
        assert!(toml::from_str::<FeaturesConfig>("callback = false").is_err());
    }
}
