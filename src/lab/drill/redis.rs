//! The Redis of the restart drills: a private `redis-server` with the append-only file on
//! (`--appendonly yes`, `--appendfsync everysec` or `always`) in a directory of its own, which
//! the drill stops — `SHUTDOWN` (the file is written out first) or a SIGKILL — and starts again
//! on the same port and directory, where it reloads the file. A probe counts the writes Redis
//! acknowledged, to tell what a restart lost from what callq lost.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::Guarded;

/// How the server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `SHUTDOWN`: the append-only file is flushed, the server exits.
    Graceful,
    /// SIGKILL to the server: whatever the file holds is what comes back.
    Kill,
}

/// A `redis-server` with the append-only file on. Stopped when dropped.
pub struct AofRedis {
    port: u16,
    fsync: &'static str,
    dir: tempfile::TempDir,
    server: Option<Guarded>,
}

impl AofRedis {
    /// Starts a server on a free port; `fsync` is `always` or `everysec`.
    pub async fn start(fsync: &'static str) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::Builder::new()
            .prefix("callq-drill-redis-")
            .tempdir()?;
        let mut me = Self {
            port,
            fsync,
            dir,
            server: None,
        };
        me.up().await?;
        Ok(me)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server on the port and directory (reloading the file there), and waits
    /// until it answers PING (not while it is still loading).
    pub async fn up(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.path();
        let args = [
            "--port".to_string(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            self.fsync.into(),
            "--dir".into(),
            dir.to_string_lossy().into_owned(),
            "--logfile".into(),
            dir.join("redis.log").to_string_lossy().into_owned(),
        ];
        let server = Guarded::spawn("redis-server", &args, &[], &dir.join("stderr.log"))?;
        self.server = Some(server);
        let end = Instant::now() + Duration::from_secs(30);
        while !ping(self.port) {
            let alive = self.server.as_mut().is_some_and(Guarded::alive);
            anyhow::ensure!(
                alive && Instant::now() < end,
                "redis-server on port {} did not come up; log: {}",
                self.port,
                std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops the server and waits until it is gone.
    pub async fn down(&mut self, how: Stop) -> anyhow::Result<()> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        match how {
            Stop::Kill => server.sigkill().await?,
            Stop::Graceful => {
                let port = self.port;
                tokio::task::spawn_blocking(move || shutdown(port))
                    .await
                    .context("joining SHUTDOWN")??;
                server.exited(Duration::from_secs(30)).await?;
            }
        }
        Ok(())
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// `SHUTDOWN` (the server answers nothing when it complies: it closes the connection).
fn shutdown(port: u16) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).context("connecting for SHUTDOWN")?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(b"SHUTDOWN\r\n")?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    anyhow::ensure!(
        answer.is_empty(),
        "SHUTDOWN refused: {}",
        String::from_utf8_lossy(&answer).trim()
    );
    Ok(())
}

/// Writes Redis acknowledged, counted by a probe that `INCR`s a key of its own as fast as
/// Redis answers, reconnecting through outages.
pub struct WriteProbe {
    key: String,
    url: String,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// What the probe found. One write at a time is in flight, so a write Redis applied but
/// could not acknowledge before it went down may hide one lost write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WritesLost {
    /// `INCR`s Redis acknowledged.
    pub acknowledged: u64,
    /// What the key holds after the restart.
    pub found: u64,
    /// Acknowledged but gone.
    pub lost: u64,
}

impl WriteProbe {
    pub fn start(url: &str, key: &str) -> Self {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(probe(
            url.to_string(),
            key.to_string(),
            acked.clone(),
            stop.clone(),
        ));
        Self {
            key: key.to_string(),
            url: url.to_string(),
            acked,
            stop,
            task,
        }
    }

    /// Stops the probe and compares what Redis holds with what it acknowledged.
    pub async fn finish(self) -> anyhow::Result<WritesLost> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let mut conn = connect(&self.url).await?;
        let found: Option<u64> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .context("reading the probe's key")?;
        let found = found.unwrap_or(0);
        let acknowledged = self.acked.load(Ordering::Relaxed);
        Ok(WritesLost {
            acknowledged,
            found,
            lost: acknowledged.saturating_sub(found),
        })
    }
}

async fn connect(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("the Redis URL")?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn probe(url: String, key: String, acked: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut conn) = connect(&url).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            match redis::cmd("INCR")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
            {
                Ok(_) => {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
