//! Callers arriving: a Poisson process (exponential gaps) at a rate in calls per simulated
//! second, each caller with an exponential talk time and patience, a menu choice and a wish
//! (or not) to be called back. The same spec and seed give the same callers at the same
//! offsets from the start, whatever answers them; [`Placed::digest`] fingerprints them.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::clock::{exp_draw, Clock};
use super::twiml_exec::CallerScript;
use super::Sim;
use crate::shutdown::Shutdown;

/// A number callers dial, how often, and the menu digit they press there (IVR numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Dialled {
    pub number: String,
    pub weight: f64,
    /// Digits a caller may press at the menu, one drawn per call.
    pub menu: Vec<String>,
}

/// The callers. Times are simulated seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Calls per simulated second.
    pub rate: f64,
    /// Mean talk time.
    pub talk_s: f64,
    /// Mean patience (0: callers never hang up while waiting).
    pub patience_s: f64,
    /// Share of callers who take a callback when offered one.
    pub callback_share: f64,
    /// Mean voicemail length.
    pub message_s: f64,
    pub numbers: Vec<Dialled>,
    pub seed: u64,
}

/// One caller drawn from the spec.
pub fn draw_caller<R: Rng + ?Sized>(
    spec: &LoadSpec,
    clock: &Clock,
    rng: &mut R,
) -> (String, CallerScript) {
    let total: f64 = spec.numbers.iter().map(|d| d.weight.max(0.0)).sum();
    let mut pick = rng.random::<f64>() * total;
    let mut dialled = spec.numbers.first();
    for d in &spec.numbers {
        pick -= d.weight.max(0.0);
        if pick <= 0.0 {
            dialled = Some(d);
            break;
        }
    }
    let number = dialled.map(|d| d.number.clone()).unwrap_or_default();
    let menu_digit = dialled
        .filter(|d| !d.menu.is_empty())
        .map(|d| d.menu[rng.random_range(0..d.menu.len())].clone());
    let patience = (spec.patience_s > 0.0).then(|| clock.exp(rng, spec.patience_s));
    let script = CallerScript {
        patience,
        talk: clock.exp(rng, spec.talk_s).max(Duration::from_millis(1)),
        menu_digit,
        wants_callback: rng.random::<f64>() < spec.callback_share,
        message: clock.real(exp_draw(rng, spec.message_s).max(1.0)),
    };
    (number, script)
}

/// What [`run`] placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placed {
    pub calls: u64,
    /// FNV-1a over every caller as drawn (offset from the start, numbers, talk, patience,
    /// menu digit, callback wish): two runs with equal digests saw the same arrivals.
    pub digest: u64,
}

/// FNV-1a, 64 bits: stable across builds and platforms.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, b: &[u8]) {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // a separator, so ("ab", "c") and ("a", "bc") differ
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    fn duration(&mut self, d: Duration) {
        self.bytes(&d.as_nanos().to_be_bytes());
    }
}

/// Places calls until `until` (or shutdown); returns how many were placed and their digest.
pub async fn run(sim: Arc<Sim>, spec: LoadSpec, until: Instant, mut shutdown: Shutdown) -> Placed {
    let clock = sim.config.clock;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut n: u64 = 0;
    let mut digest = Fnv::new();
    if spec.rate <= 0.0 || spec.numbers.is_empty() {
        return Placed::default();
    }
    let start = Instant::now();
    let mut offset = Duration::ZERO;
    loop {
        offset += clock.real(exp_draw(&mut rng, 1.0 / spec.rate));
        let next = start + offset;
        if next >= until {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.wait() => break,
        }
        let (to, script) = draw_caller(&spec, &clock, &mut rng);
        n += 1;
        // distinct callers, outside the demo's VIP list and priority prefixes
        let from = format!("+1202{:07}", n % 10_000_000);
        digest.duration(offset);
        digest.bytes(from.as_bytes());
        digest.bytes(to.as_bytes());
        digest.duration(script.talk);
        digest.duration(script.patience.unwrap_or(Duration::MAX));
        digest.bytes(script.menu_digit.as_deref().unwrap_or("").as_bytes());
        digest.bytes(&[u8::from(script.wants_callback)]);
        sim.env.place_inbound(&from, &to, script);
    }
    Placed {
        calls: n,
        digest: digest.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_tells_sequences_apart() {
        let of = |parts: &[&str]| {
            let mut f = Fnv::new();
            for p in parts {
                f.bytes(p.as_bytes());
            }
            f.0
        };
        assert_ne!(of(&["ab", "c"]), of(&["a", "bc"]));
        assert_ne!(of(&["a", "b"]), of(&["b", "a"]));
        // a fixed value: the digest must not change between builds
        assert_eq!(of(&[]), 0xcbf2_9ce4_8422_2325);
    }
}
