//! The agent console: a browser softphone served by `callq serve` at `GET /console`, plain
//! HTML, CSS and JavaScript compiled into the binary (no build step). The agent signs in with
//! its id and agent token (kept in the tab's `sessionStorage`, never a cookie); the page trades
//! the token for a Twilio Voice access token (`POST /v1/agents/{id}/voice-token`), registers a
//! Voice SDK `Device` with it and renews it on the SDK's `tokenWillExpire`, heartbeats with the
//! device's real registration state, sets statuses, answers or rejects the calls the worker
//! rings (showing the [`crate::contract::LegParameters`] of the agent's leg: caller, queue,
//! wait), counts down wrap-up, and lists the agent's queues (`GET /v1/agents/{id}/queues`).
//!
//! The Voice SDK is loaded from `CALLQ_VOICE_SDK_URL` ([`VoiceSdk`]): by default a pinned
//! release of `@twilio/voice-sdk` checked by subresource integrity; any other URL (an
//! operator's own copy, or a test's stand-in) is loaded as given. Every answer carries a
//! Content-Security-Policy that allows scripts from this server and the SDK's origin only,
//! and connections to this server and Twilio's voice endpoints.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");
const TICKER: &str = include_str!("ticker.js");

/// The Voice SDK release the console loads unless `CALLQ_VOICE_SDK_URL` says otherwise: the
/// `dist/twilio.min.js` of `@twilio/voice-sdk` 2.18.5, as the npm registry publishes it.
pub const DEFAULT_VOICE_SDK_URL: &str =
    "https://cdn.jsdelivr.net/npm/@twilio/voice-sdk@2.18.5/dist/twilio.min.js";

/// The subresource integrity of [`DEFAULT_VOICE_SDK_URL`] (SHA-384 of the published file):
/// the browser refuses the script if a single byte differs.
pub const DEFAULT_VOICE_SDK_INTEGRITY: &str =
    "sha384-LUG7DmzDPWNKRYoqyGpV4d/IByMLiya/oUhMSc/4/6hi0wbzO/8PffM4lzeFEYS8";

/// Where Twilio's Voice SDK talks to (signalling, insights, ringtones), for the page's
/// Content-Security-Policy.
const TWILIO_CONNECT: &str = "https://*.twilio.com wss://*.twilio.com https://media.twiliocdn.com";
const TWILIO_MEDIA: &str = "https://media.twiliocdn.com https://sdk.twilio.com";

/// Where the console loads the Voice SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSdk {
    /// The script's URL: absolute `http(s)://…`, or a path on this server (`/…`).
    pub url: String,
    /// The origin `script-src` must allow (None: this server's own).
    pub origin: Option<String>,
    /// Subresource integrity checked by the browser (the default release only).
    pub integrity: Option<String>,
}

impl VoiceSdk {
    /// The SDK at `url` (empty: [`DEFAULT_VOICE_SDK_URL`]). Refused: anything but an absolute
    /// http(s) URL without credentials, or a path on this server; quotes, angle brackets,
    /// backslashes, whitespace or control characters anywhere.
    pub fn from_url(url: &str) -> Result<VoiceSdk, String> {
        let url = url.trim();
        if url.is_empty() || url == DEFAULT_VOICE_SDK_URL {
            return Ok(VoiceSdk {
                url: DEFAULT_VOICE_SDK_URL.to_string(),
                origin: Some(origin_of(DEFAULT_VOICE_SDK_URL)?),
                integrity: Some(DEFAULT_VOICE_SDK_INTEGRITY.to_string()),
            });
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\`".contains(c))
        {
            return Err(format!(
                "{url:?}: no quotes, angle brackets, backslashes or whitespace"
            ));
        }
        if url.starts_with('/') && !url.starts_with("//") {
            return Ok(VoiceSdk {
                url: url.to_string(),
                origin: None,
                integrity: None,
            });
        }
        Ok(VoiceSdk {
            origin: Some(origin_of(url)?),
            url: url.to_string(),
            integrity: None,
        })
    }

    /// The Content-Security-Policy of the console's answers.
    pub fn content_security_policy(&self) -> String {
        let sdk = self
            .origin
            .as_deref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'{sdk}; style-src 'self'; img-src 'self' data:; \
             connect-src 'self' {TWILIO_CONNECT}; media-src 'self' blob: mediastream: {TWILIO_MEDIA}; \
             worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    }

    /// The page, with the SDK's URL and integrity in its `<meta>` (escaped for an attribute).
    fn page(&self) -> String {
        PAGE.replace("{{voice_sdk_url}}", &attribute(&self.url))
            .replace(
                "{{voice_sdk_integrity}}",
                &attribute(self.integrity.as_deref().unwrap_or("")),
            )
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin_of(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url:?}: use an http(s) URL or a path on this server"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url:?}: no credentials in the URL"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?}: no host"))?;
    Ok(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// `text` escaped for a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /console`, its script, its clock's worker and its style sheet.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/ticker.js", get(ticker))
}

/// Headers every console answer carries.
fn secured(sdk: &VoiceSdk, content_type: &'static str, body: String) -> Response {
    let csp = HeaderValue::from_str(&sdk.content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let headers: [(HeaderName, HeaderValue); 7] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("microphone=(self), camera=(), geolocation=()"),
        ),
    ];
    (StatusCode::OK, headers, body).into_response()
}

/// An answer built with the SDK the server was configured with; `serve` refused to start
/// with a bad one, so the error is only for a state assembled by hand.
fn asset(
    app: &AppState,
    content_type: &'static str,
    body: impl FnOnce(&VoiceSdk) -> String,
) -> Response {
    match VoiceSdk::from_url(&app.agents.voice_sdk_url) {
        Ok(sdk) => {
            let body = body(&sdk);
            secured(&sdk, content_type, body)
        }
        Err(e) => {
            tracing::error!(error = %e, "CALLQ_VOICE_SDK_URL is not usable");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the console is misconfigured: CALLQ_VOICE_SDK_URL is not usable\n",
            )
                .into_response()
        }
    }
}

async fn page(State(app): State<AppState>) -> Response {
    asset(&app, "text/html; charset=utf-8", VoiceSdk::page)
}

async fn script(State(app): State<AppState>) -> Response {
    asset(&app, "text/javascript; charset=utf-8", |_| SCRIPT.into())
}

async fn ticker(State(app): State<AppState>) -> Response {
    asset(&app, "text/javascript; charset=utf-8", |_| TICKER.into())
}

async fn style(State(app): State<AppState>) -> Response {
    asset(&app, "text/css; charset=utf-8", |_| STYLE.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::LegParameters;

    #[test]
    fn the_default_sdk_is_pinned_and_checked_by_integrity() {
        for url in ["", DEFAULT_VOICE_SDK_URL] {
            let sdk = VoiceSdk::from_url(url).expect("default");
            assert_eq!(sdk.url, DEFAULT_VOICE_SDK_URL);
            assert_eq!(sdk.origin.as_deref(), Some("https://cdn.jsdelivr.net"));
            assert_eq!(sdk.integrity.as_deref(), Some(DEFAULT_VOICE_SDK_INTEGRITY));
            assert!(DEFAULT_VOICE_SDK_URL.contains("@twilio/voice-sdk@2."));
        }
    }

    #[test]
    fn another_sdk_url_is_loaded_as_given_and_allowed_by_origin() {
        let sdk = VoiceSdk::from_url("http://127.0.0.1:4555/stub/twilio.js").expect("ok");
        assert_eq!(sdk.origin.as_deref(), Some("http://127.0.0.1:4555"));
        assert_eq!(sdk.integrity, None);
        let csp = sdk.content_security_policy();
        assert!(
            csp.contains("script-src 'self' http://127.0.0.1:4555;"),
            "{csp}"
        );
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

        let own = VoiceSdk::from_url("/static/twilio.min.js").expect("a path here");
        assert_eq!(own.origin, None);
        assert!(own.content_security_policy().contains("script-src 'self';"));
    }

    #[test]
    fn an_unusable_sdk_url_is_refused() {
        for bad in [
            "ftp://example.com/twilio.js",
            "//example.com/twilio.js",
            "javascript:alert(1)",
            "https://user:pw@example.com/twilio.js",
            "https://example.com/a\"onload=\"x.js",
            "https://example.com/a b.js",
            "twilio.js",
        ] {
            assert!(VoiceSdk::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_page_carries_the_sdk_escaped_and_nothing_inline() {
        let sdk = VoiceSdk::from_url("https://sdk.example.com/v2/twilio.js?a=1&b=2").unwrap();
        let html = sdk.page();
        assert!(html.contains("content=\"https://sdk.example.com/v2/twilio.js?a=1&amp;b=2\""));
        assert!(!html.contains("{{"), "every placeholder filled");
        // the CSP allows no inline script or style: the page has none
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
        assert!(!html.contains("onclick") && !html.contains("<style"));
    }

    #[test]
    fn the_script_reads_the_worker_s_parameters_and_never_writes_html() {
        for name in LegParameters::NAMES {
            assert!(
                SCRIPT.contains(&format!("\"{name}\"")),
                "console.js reads {name}"
            );
        }
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!SCRIPT.contains(sink), "console.js uses {sink}");
        }
        assert!(!SCRIPT.contains("localStorage") && !SCRIPT.contains("document.cookie"));
    }
}
