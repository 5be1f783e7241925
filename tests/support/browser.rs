//! A headless Chromium for the browser tests (`tests/console.rs`, `tests/wallboard_browser.rs`),
//! driven over WebDriver: Debian's `chromium` and `chromedriver` (`scripts/ensure-browser.sh`
//! installs them; without them a test fails and says so, never skips). chromedriver runs in a
//! process group of its own, which the browser it starts joins, and the whole group is killed
//! when the [`Browser`] is dropped, so a failing test leaves no browser behind. Every WebDriver
//! command is bounded ([`COMMAND`]); conditions are polled with [`until_within`].

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long one WebDriver command may take.
pub const COMMAND: Duration = Duration::from_secs(60);

/// A headless Chromium session through a chromedriver this test started.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
}

/// The chromedriver process in a process group of its own, which the browser it starts
/// joins: ended together with the test, passed or failed.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's Chromium and chromedriver; the test fails (never skips) without them.
fn browser_paths() -> (PathBuf, PathBuf) {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(n))
                    .find(|p| p.is_file())
            })
        })
    };
    let chromium = find(&["chromium", "chromium-browser"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the browser tests need Chromium and chromedriver (found chromium: {c:?}, \
             chromedriver: {d:?}); run scripts/ensure-browser.sh (it installs Debian's \
             chromium and chromium-driver packages)"
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Run `f` until it returns Some, for at most `deadline`; fails the test naming `what`.
pub async fn until_within<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "waited {deadline:?} for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver command, bounded by [`COMMAND`].
pub async fn cmd<T, E: std::fmt::Debug>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(COMMAND, fut).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(_) => panic!("{what}: no answer from the browser within {COMMAND:?}"),
    }
}

impl Browser {
    /// chromedriver on a free port, and a headless Chromium session through it with a
    /// `width`×`height` window.
    pub async fn start_sized(width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = browser_paths();
        let port = free_port();
        let driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display())),
        );
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        until_within(
            Duration::from_secs(30),
            "chromedriver answers /status",
            || {
                let http = http.clone();
                let url = format!("{url}/status");
                async move {
                    let r = http.get(url).send().await.ok()?;
                    let v: Value = r.json().await.ok()?;
                    (v["value"]["ready"] == true).then_some(())
                }
            },
        )
        .await;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
                    "--use-fake-ui-for-media-stream", "--no-first-run",
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = cmd(
            "open a Chromium session",
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&url),
        )
        .await;
        Browser {
            client,
            _driver: driver,
        }
    }

    /// [`Browser::start_sized`] with a tall 1000×1400 window.
    pub async fn start() -> Browser {
        Self::start_sized(1000, 1400).await
    }

    /// Open `url`.
    pub async fn goto(&self, url: &str) {
        cmd(&format!("open {url}"), self.client.goto(url)).await
    }

    /// Run `script` in the page (its `arguments` are `args`); its return value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        cmd(script, self.client.execute(script, args)).await
    }

    /// The text of element `id` (hidden or not).
    pub async fn text(&self, id: &str) -> String {
        let v = self
            .js(
                "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
                vec![json!(id)],
            )
            .await;
        v.as_str().unwrap_or("").trim().to_string()
    }

    /// Whether element `id` is shown (it and its ancestors not hidden).
    pub async fn shown(&self, id: &str) -> bool {
        let v = self
            .js(
                "let e = document.getElementById(arguments[0]); if (!e) return false; \
                 for (; e; e = e.parentElement) { if (e.hidden) return false; } return true;",
                vec![json!(id)],
            )
            .await;
        v == json!(true)
    }

    pub async fn click(&self, id: &str) {
        let e = cmd(id, self.client.find(Locator::Id(id))).await;
        cmd(id, e.click()).await;
    }

    /// Click the first element matching CSS `selector`.
    pub async fn click_css(&self, selector: &str) {
        let e = cmd(selector, self.client.find(Locator::Css(selector))).await;
        cmd(selector, e.click()).await;
    }

    pub async fn type_into(&self, id: &str, text: &str) {
        let e = cmd(id, self.client.find(Locator::Id(id))).await;
        cmd(id, e.clear()).await;
        cmd(id, e.send_keys(text)).await;
    }

    /// Type into the first element matching CSS `selector`.
    pub async fn type_into_css(&self, selector: &str, text: &str) {
        let e = cmd(selector, self.client.find(Locator::Css(selector))).await;
        cmd(selector, e.clear()).await;
        cmd(selector, e.send_keys(text)).await;
    }

    /// Keep a screenshot of the window as `target/tmp/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = cmd("screenshot", self.client.screenshot()).await;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("{name}.png"));
        if let Err(e) = std::fs::write(&path, png) {
            eprintln!("cannot keep the screenshot {}: {e}", path.display());
        }
        path
    }
}
