//! Moving a live number onto callq gradually: `[rollout]` sends a stable share of callers
//! (by a hash of their number, so one person always takes the same path) to callq's queue and
//! the rest down the legacy path the centre had before (a `<Redirect>` to its old webhook, or
//! a plain `<Dial>` of one number or agent for 30 s). The share in the file is the default;
//! an admin can override it at run time (`PUT /v1/admin/rollout`), every server following
//! within a second. Share 0 is an instant rollback: new calls go the old way, calls already in
//! callq's line finish there.

use serde::Deserialize;
use sha1::{Digest, Sha1};

/// How finely the share is cut: a caller's bucket is one of this many.
pub const BUCKETS: u32 = 10_000;

/// `[rollout]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Percent of callers routed by callq (0 to 100).
    #[serde(default = "d_share")]
    pub share_pct: u8,
    /// Where the other callers go; required when any share below 100 may apply.
    #[serde(default)]
    pub legacy: Option<LegacyPath>,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            share_pct: d_share(),
            legacy: None,
        }
    }
}

fn d_share() -> u8 {
    100
}

/// The path callers not in callq's share take: what the centre did before callq.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum LegacyPath {
    /// `<Redirect>` to the centre's existing voice webhook (Twilio posts the call there).
    Redirect { url: String },
    /// `<Dial>` one number for `timeout_s`.
    Dial {
        number: String,
        #[serde(default = "d_timeout")]
        timeout_s: u32,
    },
    /// `<Dial><Client>` one agent's Voice SDK identity for `timeout_s`.
    Client {
        identity: String,
        #[serde(default = "d_timeout")]
        timeout_s: u32,
    },
}

fn d_timeout() -> u32 {
    30
}

/// The bucket (0 to [`BUCKETS`] − 1) of a caller: from SHA-1 of their number as Twilio sends
/// it, so it is the same on every server, in every version, for every call they make.
pub fn bucket(caller: &str) -> u32 {
    let digest = Sha1::digest(caller.trim().as_bytes());
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    head % BUCKETS
}

/// Whether `caller` is routed by callq at `share_pct` percent. Raising the share only ever
/// adds callers: one routed by callq at 10 % still is at 20 %.
pub fn routed_by_callq(caller: &str, share_pct: u8) -> bool {
    let share = u32::from(share_pct.min(100));
    bucket(caller) < share * (BUCKETS / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers() -> impl Iterator<Item = String> {
        (0..10_000u32).map(|i| format!("+1415{:07}", i * 7 + 1_000_003))
    }

    #[test]
    fn the_split_is_within_two_points_of_the_share_over_10000_numbers() {
        for share in [1u8, 10, 25, 50, 90, 99] {
            let n = numbers().filter(|c| routed_by_callq(c, share)).count();
            let got = n as f64 / 100.0;
            assert!(
                (got - f64::from(share)).abs() <= 2.0,
                "share {share}%: {got:.2}% routed by callq"
            );
        }
        assert_eq!(numbers().filter(|c| routed_by_callq(c, 0)).count(), 0);
        assert_eq!(
            numbers().filter(|c| routed_by_callq(c, 100)).count(),
            10_000
        );
    }

    #[test]
    fn a_caller_keeps_their_path_and_raising_the_share_only_adds_callers() {
        for c in numbers().take(2_000) {
            assert_eq!(bucket(&c), bucket(&format!(" {c} ")));
            for (low, high) in [(10u8, 20u8), (20, 50), (50, 100)] {
                assert!(
                    !routed_by_callq(&c, low) || routed_by_callq(&c, high),
                    "{c}"
                );
            }
        }
    }

    #[test]
    fn buckets_are_fixed_values() {
        // SHA-1's first four bytes, big-endian, modulo 10,000 (computed independently): the
        // hash must never change, or callers would switch paths in the middle of a rollout
        assert_eq!(bucket("+14155550100"), 3966);
        assert_eq!(bucket("+447700900123"), 2652);
    }
}
