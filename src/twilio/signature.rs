//! `X-Twilio-Signature`: computing and checking Twilio's webhook signature exactly as Twilio's
//! helper libraries (twilio-python `request_validator.py`, twilio-node `webhooks.ts`) do.
//!
//! The signed string is the full URL Twilio requested, followed, for each POST parameter name in
//! sorted order, by every distinct value of that parameter in sorted order, each appended as
//! `name + value` with no separator. The signature is the base64 of HMAC-SHA1 keyed with the
//! account's Auth Token. A request is accepted when the signature matches the URL as given, the
//! URL with its port removed, or the URL with the scheme's default port added (Twilio is not
//! consistent about ports). JSON bodies are signed differently: the URL carries a `bodySHA256`
//! query parameter with the hex SHA-256 of the raw body and is signed with no parameters; see
//! [`validate_json_body`].
//!
//! Comparisons are constant-time (`hmac`'s `verify_slice`). Nothing here panics on input from the
//! network.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// Name of the query parameter that carries the SHA-256 of a JSON body.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

/// A keyed HMAC-SHA1 already fed with the string to sign for `url` and `params`.
fn signed_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes())
        .expect("HMAC-SHA1 accepts keys of any length");
    mac.update(url.as_bytes());

    // Sorting (name, value) pairs sorts by name, then by value; dedup drops repeated values.
    // `str`'s order is byte order, which for UTF-8 is code point order, as Python's `sorted`.
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` Twilio sends for a request to `url` with form parameters `params`
/// (empty for a GET, whose parameters are already in the URL).
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(signed_mac(auth_token, url, params).finalize().into_bytes())
}

/// A form-encoded body for `params` and the `X-Twilio-Signature` Twilio would send with it to
/// `url` (the full public URL, query included): what callq's Twilio simulator, load generator
/// and tests post to callq's own webhooks. Returns `(body, signature)`.
pub fn signed_form(auth_token: &str, url: &str, params: &[(&str, &str)]) -> (String, String) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    // Encoding string pairs cannot fail; an empty body would only fail the signature check.
    let body = serde_urlencoded::to_string(params).unwrap_or_default();
    (body, compute(auth_token, url, &owned))
}

/// Whether `signature` (the `X-Twilio-Signature` header) is Twilio's signature of a form-encoded
/// request to `url` with parameters `params`. `url` must be the public URL Twilio requested
/// (scheme, host, optional port, path, query), not one rebuilt from a proxied `Host` header.
///
/// Accepts a match on the URL as given, with its port removed, or with the scheme's default
/// port added (443 for https, 80 for http), as the helper libraries do.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Some(expected) = decode_signature(signature) else {
        return false;
    };
    url_variants(url).iter().any(|candidate| {
        signed_mac(auth_token, candidate, params)
            .verify_slice(&expected)
            .is_ok()
    })
}

/// Whether `signature` is Twilio's signature of a request with a JSON `body` to `url`.
///
/// Twilio signs such requests with the URL alone (no body parameters); the URL carries a
/// `bodySHA256` query parameter that must equal the lowercase hex SHA-256 of the raw body.
/// A URL without `bodySHA256` is rejected (the body would be unauthenticated). Port variants
/// are accepted as in [`validate`].
pub fn validate_json_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, BODY_SHA256_PARAM) else {
        return false;
    };
    let actual = hex_lower(&Sha256::digest(body));
    // The hash is not secret, but compare in constant time anyway: it is cheap.
    let body_ok = constant_time_eq(claimed.as_bytes(), actual.as_bytes());
    let signature_ok = validate(auth_token, url, &[], signature);
    body_ok && signature_ok
}

/// The lowercase hex SHA-256 of `body`, as Twilio puts it in `bodySHA256`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex_lower(&Sha256::digest(body))
}

/// Decodes a base64 signature; `None` unless it is exactly one HMAC-SHA1 output (20 bytes).
fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    let bytes = BASE64.decode(signature.trim().as_bytes()).ok()?;
    (bytes.len() == 20).then_some(bytes)
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first value of query parameter `name` in `url`, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let after_query = url.split_once('?')?.1;
    let query = after_query.split_once('#').map_or(after_query, |(q, _)| q);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The URLs a signature may have been computed on: as given, port removed, default port added.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    if let Some(parts) = UrlParts::split(url) {
        let stripped = parts.with_port(None);
        let with_port = match parts.port {
            Some(_) => url.to_owned(),
            None => match parts.default_port() {
                Some(port) => parts.with_port(Some(port)),
                None => url.to_owned(),
            },
        };
        for candidate in [stripped, with_port] {
            if !variants.contains(&candidate) {
                variants.push(candidate);
            }
        }
    }
    variants
}

/// Just enough of a URL to move its port: `scheme://userinfo@host:port` + the rest.
struct UrlParts<'a> {
    scheme: &'a str,
    /// `scheme://` and any `userinfo@`.
    prefix: &'a str,
    host: &'a str,
    /// The port's digits (possibly empty, as in `host:`), when a `:` follows the host.
    port: Option<&'a str>,
    /// Path, query and fragment.
    rest: &'a str,
}

impl<'a> UrlParts<'a> {
    fn split(url: &'a str) -> Option<Self> {
        let scheme_end = url.find("://")?;
        let scheme = &url[..scheme_end];
        let authority_start = scheme_end + 3;
        let authority_len = url[authority_start..]
            .find(['/', '?', '#'])
            .unwrap_or(url.len() - authority_start);
        let authority_end = authority_start + authority_len;
        let authority = &url[authority_start..authority_end];
        let host_start = authority.rfind('@').map_or(0, |at| at + 1);
        let host_port = &authority[host_start..];
        // An IPv6 literal (`[::1]:8080`) has colons of its own: look after its `]`.
        let search_from = if host_port.starts_with('[') {
            host_port.find(']')? + 1
        } else {
            0
        };
        let (host, port) = match host_port[search_from..].rfind(':') {
            Some(colon) => {
                let colon = search_from + colon;
                (&host_port[..colon], Some(&host_port[colon + 1..]))
            }
            None => (host_port, None),
        };
        if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        Some(Self {
            scheme,
            prefix: &url[..authority_start + host_start],
            host,
            port,
            rest: &url[authority_end..],
        })
    }

    fn default_port(&self) -> Option<&'static str> {
        if self.scheme.eq_ignore_ascii_case("https") {
            Some("443")
        } else if self.scheme.eq_ignore_ascii_case("http") {
            Some("80")
        } else {
            None
        }
    }

    fn with_port(&self, port: Option<&str>) -> String {
        match port {
            Some(port) => format!("{}{}:{}{}", self.prefix, self.host, port, self.rest),
            None => format!("{}{}{}", self.prefix, self.host, self.rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const SIG_1: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// `P` of the conformance vectors in `docs/twilio.md`.
    fn p() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    // ---- The seven conformance vectors listed in docs/twilio.md ----

    #[test]
    fn vector_1_url_and_params() {
        assert_eq!(compute(TOKEN, URL, &p()), SIG_1);
        assert!(validate(TOKEN, URL, &p(), SIG_1));
    }

    #[test]
    fn vector_2_non_default_port_validates_via_stripped_variant() {
        let url = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert_ne!(compute(TOKEN, url, &p()), SIG_1);
        assert!(validate(TOKEN, url, &p(), SIG_1));
    }

    #[test]
    fn vector_3_https_default_port() {
        let url = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        let expected = "kvajT1Ptam85bY51eRf/AJRuM3w=";
        assert_eq!(compute(TOKEN, url, &p()), expected);
        assert!(validate(TOKEN, url, &p(), expected));
        // Twilio signed with :443 while we know the URL without it: the added-port variant.
        assert!(validate(TOKEN, URL, &p(), expected));
        // And the other way round: signed without the port, configured with it.
        assert!(validate(TOKEN, url, &p(), SIG_1));
    }

    #[test]
    fn vector_4_http_default_port() {
        let url = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        let expected = "0ZXoZLH/DfblKGATFgpif+LLRf4=";
        assert_eq!(compute(TOKEN, url, &p()), expected);
        assert!(validate(TOKEN, url, &p(), expected));
        assert!(validate(
            TOKEN,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p(),
            expected
        ));
    }

    #[test]
    fn vector_5_http_non_default_port() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        let expected = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=";
        assert_eq!(compute(TOKEN, url, &p()), expected);
        assert!(validate(TOKEN, url, &p(), expected));
        // A non-default port is never invented: the port-less URL does not match it.
        assert!(!validate(
            TOKEN,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p(),
            expected
        ));
    }

    #[test]
    fn vector_6_repeated_params_deduplicated_and_sorted() {
        let repeated = params(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        let expected = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
        assert_eq!(compute(TOKEN, URL, &repeated), expected);
        assert!(validate(TOKEN, URL, &repeated, expected));
        // Order of arrival does not matter.
        let mut reversed = repeated.clone();
        reversed.reverse();
        assert!(validate(TOKEN, URL, &reversed, expected));
        // A missing or extra value does.
        assert!(!validate(TOKEN, URL, &repeated[..3], expected));
    }

    #[test]
    fn vector_7_json_body() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(body_sha256_hex(body), hash);
        let url = format!("{URL}&bodySHA256={hash}");
        let expected = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert_eq!(compute(TOKEN, &url, &[]), expected);
        assert!(validate_json_body(TOKEN, &url, body, expected));
        // Port variants apply to JSON bodies too.
        let with_port =
            format!("https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        assert!(validate_json_body(TOKEN, &with_port, body, expected));
    }

    // ---- Rejections ----

    #[test]
    fn tampered_parameter_is_rejected() {
        let mut tampered = p();
        tampered[2].1 = "9999".to_owned();
        assert!(!validate(TOKEN, URL, &tampered, SIG_1));
        let mut extra = p();
        extra.push(("Evil".to_owned(), "1".to_owned()));
        assert!(!validate(TOKEN, URL, &extra, SIG_1));
        assert!(!validate(TOKEN, URL, &p()[1..], SIG_1));
        // Moving a character from a name to its value changes nothing in the signed string,
        // which is how Twilio signs; document that rather than pretend otherwise.
        let shifted = params(&[
            ("CallSi", "dCA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(compute(TOKEN, URL, &shifted), SIG_1);
    }

    #[test]
    fn tampered_url_is_rejected() {
        assert!(!validate(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &p(),
            SIG_1
        ));
        assert!(!validate(
            TOKEN,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &p(),
            SIG_1
        ));
        assert!(!validate(
            TOKEN,
            "https://evil.com/myapp.php?foo=1&bar=2",
            &p(),
            SIG_1
        ));
    }

    #[test]
    fn wrong_token_is_rejected() {
        assert!(!validate("54321", URL, &p(), SIG_1));
        assert!(!validate("", URL, &p(), SIG_1));
    }

    #[test]
    fn empty_or_garbage_signature_is_rejected() {
        for bad in [
            "",
            " ",
            "not base64!!",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8",
            "RSOYDt4T1cUTdK1PDd93/VVr8B9=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "AAAA",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "\u{0}\u{ffff}",
        ] {
            assert!(!validate(TOKEN, URL, &p(), bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn surrounding_whitespace_in_header_is_tolerated() {
        assert!(validate(TOKEN, URL, &p(), &format!(" {SIG_1}\t")));
    }

    #[test]
    fn non_ascii_values_are_signed_as_utf8() {
        let url = "https://callq.example/twilio/voice";
        let ps = params(&[
            ("CallerName", "José Müller"),
            ("Body", "日本語 🎧"),
            ("From", "+33123456789"),
        ]);
        let signature = compute(TOKEN, url, &ps);
        // Reference: the signed string built by hand, in Twilio's order.
        let mut mac = HmacSha1::new_from_slice(TOKEN.as_bytes()).expect("any key length");
        mac.update(
            "https://callq.example/twilio/voiceBody日本語 🎧CallerNameJosé MüllerFrom+33123456789"
                .as_bytes(),
        );
        assert_eq!(signature, BASE64.encode(mac.finalize().into_bytes()));
        assert!(validate(TOKEN, url, &ps, &signature));
        let mut changed = ps.clone();
        changed[0].1 = "Jose Muller".to_owned();
        assert!(!validate(TOKEN, url, &changed, &signature));
    }

    #[test]
    fn names_sort_by_code_point_then_values() {
        // Uppercase sorts before lowercase, "Digits" before "DigitsX", values sorted per name.
        let ps = params(&[
            ("b", "2"),
            ("B", "1"),
            ("DigitsX", "0"),
            ("Digits", "9"),
            ("Digits", "10"),
        ]);
        let mut mac = HmacSha1::new_from_slice(TOKEN.as_bytes()).expect("any key length");
        mac.update(b"https://x.example/B1Digits10Digits9DigitsX0b2");
        assert_eq!(
            compute(TOKEN, "https://x.example/", &ps),
            BASE64.encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn get_request_signs_url_alone() {
        let url = "https://callq.example/twilio/wait?QueuePosition=3&CallSid=CA1";
        let signature = compute(TOKEN, url, &[]);
        assert!(validate(TOKEN, url, &[], &signature));
        assert!(!validate(TOKEN, url, &p(), &signature));
    }

    #[test]
    fn json_body_rejections() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = body_sha256_hex(body);
        let url = format!("{URL}&bodySHA256={hash}");
        let signature = compute(TOKEN, &url, &[]);
        assert!(validate_json_body(TOKEN, &url, body, &signature));
        // Body changed: hash mismatch, though the URL signature still matches.
        assert!(!validate_json_body(TOKEN, &url, b"{}", &signature));
        // Wrong token.
        assert!(!validate_json_body("nope", &url, body, &signature));
        // No bodySHA256 in the URL: the body is not covered, reject.
        let bare = compute(TOKEN, URL, &[]);
        assert!(!validate_json_body(TOKEN, URL, body, &bare));
        // Uppercase hex is not what Twilio sends.
        let upper = format!("{URL}&bodySHA256={}", hash.to_uppercase());
        let upper_sig = compute(TOKEN, &upper, &[]);
        assert!(!validate_json_body(TOKEN, &upper, body, &upper_sig));
        // Garbage signature.
        assert!(!validate_json_body(TOKEN, &url, body, "garbage"));
    }

    #[test]
    fn url_variants_cover_ports_userinfo_and_ipv6() {
        assert_eq!(
            url_variants("https://h.example/p?q=1"),
            vec!["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_variants("http://h.example:8080/p"),
            vec!["http://h.example:8080/p", "http://h.example/p"]
        );
        assert_eq!(
            url_variants("https://u:pw@h.example:8443"),
            vec!["https://u:pw@h.example:8443", "https://u:pw@h.example"]
        );
        assert_eq!(
            url_variants("https://[::1]:8443/x"),
            vec!["https://[::1]:8443/x", "https://[::1]/x"]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            vec!["https://[::1]/x", "https://[::1]:443/x"]
        );
        // Not a URL we understand: only the URL as given.
        assert_eq!(url_variants("no scheme"), vec!["no scheme"]);
        assert_eq!(url_variants("https://h:abc/"), vec!["https://h:abc/"]);
        assert_eq!(url_variants("https://[::1/"), vec!["https://[::1/"]);
        assert_eq!(url_variants(""), vec![""]);
    }

    #[test]
    fn odd_urls_do_not_panic() {
        for url in [
            "://",
            "a://",
            "https://",
            "https://:",
            "https://@",
            "https://[",
            "https://é:1/ü",
            "?#",
        ] {
            let signature = compute(TOKEN, url, &p());
            assert!(validate(TOKEN, url, &p(), &signature), "{url}");
            let _ = validate_json_body(TOKEN, url, b"", &signature);
        }
    }
}
