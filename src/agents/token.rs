//! Bearer tokens for the agent API, each valid for one agent only, until an expiry, and while
//! the agent's token generation is the one it was issued under.
//!
//! A token is `v2.<base64url(agent_id)>.<generation>.<expires_at_unix_s>.<base64url(hmac_sha256)>`,
//! unpadded URL-safe base64, so it fits in a header, a query string or a cookie unchanged. The
//! MAC is HMAC-SHA256 under the server's secret over a fixed domain label followed by the first
//! four fields exactly as written, so a token cannot be reshaped without the secret, and a MAC
//! made for some other purpose with the same secret is never a valid token.
//!
//! The generation is a short random word kept on the agent in Redis: creating the agent picks
//! one, and revoking the agent's tokens picks another ([`crate::store::Store::revoke_tokens`]), so deleting and re-creating an agent, or
//! an explicit revoke, invalidates every token issued before. The agent API reads it on every
//! agent request and refuses a token whose generation is not the agent's current one.
//!
//! [`verify`] checks the shape, then the MAC in constant time, and only then the expiry, so a
//! forged token always reads as [`TokenError::BadSignature`] and never tells the forger whether
//! its expiry would have passed. It returns the agent the token was issued to; the handler
//! compares that with the agent in the URL ([`AgentClaims::is_for`]), which is what makes a
//! token valid for one agent only.
//!
//! Secrets: [`issue`] refuses an empty secret (anyone could mint tokens with it), and
//! [`verify`] rejects every token when the secret is empty. Use at least 32 random bytes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The first field of every token this version issues.
const VERSION: &str = "v2";

/// Longest token generation, in characters (letters and digits).
pub const MAX_GENERATION_LEN: usize = 32;

/// Prepended to the MAC input so this secret's MACs mean "agent token" and nothing else.
const DOMAIN: &[u8] = b"callq agent token\0";

/// Longest token [`verify`] will look at; longer input is rejected before any work.
pub const MAX_TOKEN_LEN: usize = 1024;

/// Longest agent id [`issue`] accepts, in bytes (keeps every token under [`MAX_TOKEN_LEN`]).
pub const MAX_AGENT_ID_LEN: usize = 256;

/// What a valid token says: who it was issued to, under which generation, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentClaims {
    /// The agent the token was issued to.
    pub agent_id: String,
    /// The agent's token generation when it was issued; the token is void once it changes.
    pub generation: String,
    /// Unix seconds; the token is valid while `now < expires_at`.
    pub expires_at: i64,
}

impl AgentClaims {
    /// Whether these claims allow acting as `agent_id` (exact, case-sensitive match).
    pub fn is_for(&self, agent_id: &str) -> bool {
        self.agent_id == agent_id
    }
}

/// Why a token was not issued or not accepted. The messages are safe to log; they never
/// contain the token or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format: wrong number of fields, unknown version, bad base64,
    /// wrong MAC length, too long.
    #[error("malformed agent token")]
    Malformed,
    /// Well-formed, but not made with this secret, or altered since.
    #[error("agent token signature does not match")]
    BadSignature,
    /// Genuine, but its expiry has passed.
    #[error("agent token has expired")]
    Expired,
    /// [`issue`] was given an empty secret, or [`verify`] was (every token is then rejected).
    #[error("agent token secret is empty")]
    EmptySecret,
    /// [`issue`] was given an empty agent id or one longer than [`MAX_AGENT_ID_LEN`].
    #[error("agent id must be 1 to {MAX_AGENT_ID_LEN} bytes")]
    BadAgentId,
    /// [`issue`] was given a generation that is not 1 to [`MAX_GENERATION_LEN`] letters and
    /// digits.
    #[error("token generation must be 1 to {MAX_GENERATION_LEN} letters and digits")]
    BadGeneration,
}

fn is_generation(g: &str) -> bool {
    !g.is_empty() && g.len() <= MAX_GENERATION_LEN && g.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Issues a token that lets `agent_id` act as itself until `expires_at_unix_s` (exclusive),
/// while its token generation is `generation`.
///
/// Fails with [`TokenError::EmptySecret`] for an empty secret, [`TokenError::BadAgentId`]
/// for an empty or overlong id and [`TokenError::BadGeneration`] for a bad generation.
pub fn issue(
    secret: &[u8],
    agent_id: &str,
    generation: &str,
    expires_at_unix_s: i64,
) -> Result<String, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::EmptySecret);
    }
    if agent_id.is_empty() || agent_id.len() > MAX_AGENT_ID_LEN {
        return Err(TokenError::BadAgentId);
    }
    if !is_generation(generation) {
        return Err(TokenError::BadGeneration);
    }
    let signed = format!(
        "{VERSION}.{}.{generation}.{expires_at_unix_s}",
        URL_SAFE_NO_PAD.encode(agent_id)
    );
    let mac = mac_for(secret, &signed)?.finalize().into_bytes();
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac)))
}

/// Checks `token` against `secret` at `now_unix_s` and returns whom it was issued to.
///
/// The caller must still check [`AgentClaims::is_for`] against the agent being acted on.
pub fn verify(secret: &[u8], token: &str, now_unix_s: i64) -> Result<AgentClaims, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::EmptySecret);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (signed, mac_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let mut fields = signed.split('.');
    let (Some(version), Some(id_b64), Some(generation), Some(expiry), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    if version != VERSION
        || id_b64.is_empty()
        || !is_generation(generation)
        || !is_expiry_text(expiry)
    {
        return Err(TokenError::Malformed);
    }
    let mac = URL_SAFE_NO_PAD
        .decode(mac_b64)
        .map_err(|_| TokenError::Malformed)?;
    if mac.len() != 32 {
        return Err(TokenError::Malformed);
    }

    mac_for(secret, signed)?
        .verify_slice(&mac)
        .map_err(|_| TokenError::BadSignature)?;

    // Authentic from here on: these fields are what `issue` wrote, so failures below mean a
    // token from a buggy or foreign issuer sharing our secret; still no panic.
    let agent_id = URL_SAFE_NO_PAD
        .decode(id_b64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|id| !id.is_empty())
        .ok_or(TokenError::Malformed)?;
    let expires_at: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    if now_unix_s >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(AgentClaims {
        agent_id,
        generation: generation.to_string(),
        expires_at,
    })
}

/// An optional `-` then 1 to 19 ASCII digits: the shape `i64`'s `Display` writes.
fn is_expiry_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn mac_for(secret: &[u8], signed: &str) -> Result<HmacSha256, TokenError> {
    // HMAC takes keys of any length; the error arm is unreachable but not worth a panic.
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::EmptySecret)?;
    mac.update(DOMAIN);
    mac.update(signed.as_bytes());
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_780_000_000;

    const GEN: &str = "g1";

    fn token(agent: &str) -> String {
        issue(SECRET, agent, GEN, NOW + 3600).expect("issue")
    }

    fn fields(token: &str) -> Vec<String> {
        token.split('.').map(str::to_string).collect()
    }

    #[test]
    fn round_trip_returns_the_agent_and_expiry() {
        let t = token("alice");
        let claims = verify(SECRET, &t, NOW).expect("valid");
        assert_eq!(
            claims,
            AgentClaims {
                agent_id: "alice".into(),
                generation: GEN.into(),
                expires_at: NOW + 3600
            }
        );
        assert!(claims.is_for("alice"));
        assert!(!claims.is_for("Alice"));
    }

    #[test]
    fn token_is_compact_and_url_safe() {
        let t = token("agent-42/ünïcode?&=");
        assert!(t.starts_with("v2."), "{t}");
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{t}"
        );
        assert_eq!(fields(&t).len(), 5);
        assert!(t.len() < 120, "{} bytes", t.len());
        let claims = verify(SECRET, &t, NOW).expect("valid");
        assert_eq!(claims.agent_id, "agent-42/ünïcode?&=");
    }

    #[test]
    fn another_agents_token_names_that_other_agent() {
        let bobs = token("bob");
        let claims = verify(SECRET, &bobs, NOW).expect("genuine");
        assert_eq!(claims.agent_id, "bob");
        assert!(!claims.is_for("alice"));
    }

    #[test]
    fn expired_at_and_after_the_expiry_second() {
        let t = issue(SECRET, "alice", GEN, NOW).expect("issue");
        assert!(verify(SECRET, &t, NOW - 1).is_ok());
        assert_eq!(verify(SECRET, &t, NOW), Err(TokenError::Expired));
        assert_eq!(verify(SECRET, &t, NOW + 86_400), Err(TokenError::Expired));
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let t = token("alice");
        assert_eq!(
            verify(b"another secret entirely", &t, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_agent_id_is_rejected() {
        let t = token("alice");
        let mut f = fields(&t);
        f[1] = URL_SAFE_NO_PAD.encode("bob");
        assert_eq!(
            verify(SECRET, &f.join("."), NOW),
            Err(TokenError::BadSignature)
        );
        // Grafting bob's id field onto alice's MAC does not work either.
        let mut bob = fields(&token("bob"));
        bob[4] = fields(&t)[4].clone();
        assert_eq!(
            verify(SECRET, &bob.join("."), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_expiry_is_rejected_even_when_expired() {
        let t = issue(SECRET, "alice", GEN, NOW - 10).expect("issue");
        let mut f = fields(&t);
        f[3] = (NOW + 10 * 365 * 86_400).to_string();
        assert_eq!(
            verify(SECRET, &f.join("."), NOW),
            Err(TokenError::BadSignature)
        );
        // A forged token that is also expired still reads as forged, not expired.
        let t = token("alice");
        let mut f = fields(&t);
        f[3] = (NOW - 1).to_string();
        assert_eq!(
            verify(SECRET, &f.join("."), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let t = token("alice");
        let mut f = fields(&t);
        let mut mac = URL_SAFE_NO_PAD.decode(&f[4]).expect("b64");
        mac[0] ^= 1;
        f[4] = URL_SAFE_NO_PAD.encode(&mac);
        assert_eq!(
            verify(SECRET, &f.join("."), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn version_is_part_of_the_format() {
        let t = token("alice");
        let v3 = t.replacen("v2.", "v3.", 1);
        assert_eq!(verify(SECRET, &v3, NOW), Err(TokenError::Malformed));
        // a token of the earlier format (no generation) is refused
        let v1 = format!("v1.{}.{}.AAAA", URL_SAFE_NO_PAD.encode("alice"), NOW + 60);
        assert_eq!(verify(SECRET, &v1, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn the_generation_is_signed_and_returned() {
        let t = token("alice");
        let mut f = fields(&t);
        f[2] = "g2".into();
        assert_eq!(
            verify(SECRET, &f.join("."), NOW),
            Err(TokenError::BadSignature),
            "a token cannot be moved to a new generation"
        );
        let fresh = "Zx81pQ0aaaaBBBBc".to_string();
        let t = issue(SECRET, "alice", &fresh, NOW + 60).expect("issue");
        assert_eq!(verify(SECRET, &t, NOW).map(|c| c.generation), Ok(fresh));
        for bad in ["", "a.b", "ünï", &"x".repeat(MAX_GENERATION_LEN + 1)] {
            assert_eq!(
                issue(SECRET, "alice", bad, NOW + 60),
                Err(TokenError::BadGeneration),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn truncated_tokens_are_rejected() {
        let t = token("alice");
        for len in 0..t.len() {
            let cut = &t[..len];
            let result = verify(SECRET, cut, NOW);
            assert!(
                matches!(
                    result,
                    Err(TokenError::Malformed | TokenError::BadSignature)
                ),
                "{cut:?} gave {result:?}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for garbage in [
            "",
            ".",
            "...",
            "....",
            "v2....",
            "v2.YWxpY2U.g1.notanumber.AAAA",
            "v2.YWxpY2U.g1.+1780000000.AAAA",
            "v2.YWxpY2U.g1.99999999999999999999.AAAA",
            "v2.YWxpY2U.g1.1780003600.!!!",
            "v2.YWxpY2U=.g1.1780003600.AAAA",
            "v2.YWxpY2U.g-1.1780003600.AAAA",
            "Bearer v2.YWxpY2U.g1.1780003600.AAAA",
            "v2.YWxpY2U.g1.1780003600.AAAA.extra",
            "\u{0}\u{ffff}",
            long.as_str(),
        ] {
            assert_eq!(
                verify(SECRET, garbage, NOW),
                Err(TokenError::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn padded_or_extended_token_is_not_accepted() {
        let t = token("alice");
        assert!(verify(SECRET, &format!("{t}="), NOW).is_err());
        assert!(verify(SECRET, &format!("{t}A"), NOW).is_err());
        assert!(verify(SECRET, &format!(" {t}"), NOW).is_err());
    }

    #[test]
    fn empty_secret_is_refused_both_ways() {
        assert_eq!(
            issue(b"", "alice", GEN, NOW + 60),
            Err(TokenError::EmptySecret)
        );
        // A token someone minted with an empty key by hand is still rejected.
        let signed = format!("v2.{}.{GEN}.{}", URL_SAFE_NO_PAD.encode("alice"), NOW + 60);
        let mut mac = HmacSha256::new_from_slice(b"").expect("any key length");
        mac.update(DOMAIN);
        mac.update(signed.as_bytes());
        let forged = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(verify(b"", &forged, NOW), Err(TokenError::EmptySecret));
    }

    #[test]
    fn agent_id_must_be_present_and_bounded() {
        assert_eq!(
            issue(SECRET, "", GEN, NOW + 60),
            Err(TokenError::BadAgentId)
        );
        let long = "x".repeat(MAX_AGENT_ID_LEN + 1);
        assert_eq!(
            issue(SECRET, &long, GEN, NOW + 60),
            Err(TokenError::BadAgentId)
        );
        let longest = "x".repeat(MAX_AGENT_ID_LEN);
        let generation = "g".repeat(MAX_GENERATION_LEN);
        let t = issue(SECRET, &longest, &generation, i64::MIN).expect("issue");
        assert!(t.len() <= MAX_TOKEN_LEN);
        assert_eq!(verify(SECRET, &t, NOW), Err(TokenError::Expired));
        let t = issue(SECRET, &longest, &generation, i64::MAX).expect("issue");
        assert_eq!(verify(SECRET, &t, NOW).map(|c| c.agent_id), Ok(longest));
    }
}
