//! A private `redis-server` child on a free loopback port in a temporary directory, for
//! `callq demo` (when no `REDIS_URL` is given) and for the test harness, which also builds
//! local Redis Clusters out of [`EmbeddedRedis::start_cluster_node`]s. Stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedRedisError {
    #[error(
        "redis-server was not found on PATH ({0}); install it, e.g. `apt-get install -y redis-server` \
         on Debian/Ubuntu or `brew install redis` on macOS, or point REDIS_URL at a running Redis"
    )]
    Missing(std::io::Error),
    #[error("cannot start redis-server: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis-server did not become ready on port {port} within {waited:?}; log: {log}")]
    NotReady {
        port: u16,
        waited: Duration,
        log: String,
    },
}

/// A running `redis-server` child. Dropping it kills the server and removes its directory.
///
/// The server runs under a small `sh` guard that holds our end of a pipe: when this process
/// goes away for any reason (even a test binary that never drops its statics, or a crash),
/// the pipe closes and the guard stops the server, so no `redis-server` outlives us.
pub struct EmbeddedRedis {
    child: Child,
    guard: Option<std::process::ChildStdin>,
    port: u16,
    dir: tempfile::TempDir,
}

impl EmbeddedRedis {
    /// Start a server on a free port, with persistence off, and wait until it answers PING.
    pub fn start() -> Result<Self, EmbeddedRedisError> {
        Self::start_as(false)
    }

    /// [`EmbeddedRedis::start`] with `--cluster-enabled yes`: a node of a Redis Cluster yet
    /// to be formed (`redis-cli --cluster create`), its bus on a second free port.
    pub fn start_cluster_node() -> Result<Self, EmbeddedRedisError> {
        Self::start_as(true)
    }

    fn start_as(cluster: bool) -> Result<Self, EmbeddedRedisError> {
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(cluster) {
                Ok(r) => return Ok(r),
                Err(e @ EmbeddedRedisError::Missing(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EmbeddedRedisError::Io(std::io::Error::other("no attempt"))))
    }

    fn try_start(cluster: bool) -> Result<Self, EmbeddedRedisError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::Builder::new().prefix("callq-redis-").tempdir()?;
        let log = dir.path().join("redis.log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(GUARD)
            .arg("sh")
            .arg("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log);
        if cluster {
            // the bus port is not port + 10000, which may not exist above 55535
            let bus = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "3000"]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => EmbeddedRedisError::Missing(e),
                _ => EmbeddedRedisError::Io(e),
            })?;
        let guard = child.stdin.take();
        let mut me = Self {
            child,
            guard,
            port,
            dir,
        };
        let waited = Duration::from_secs(10);
        let start = Instant::now();
        while start.elapsed() < waited {
            if ping(port) {
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                if status.code() == Some(127) {
                    return Err(EmbeddedRedisError::Missing(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "redis-server: command not found",
                    )));
                }
                break; // exited: probably the port was taken in the meantime
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(EmbeddedRedisError::NotReady {
            port,
            waited: start.elapsed(),
            log: std::fs::read_to_string(me.log_path()).unwrap_or_default(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
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

/// Runs `$@` (redis-server and its flags) and stops it when our stdin reaches end of file.
/// Exits with the server's status (127 when the binary is missing).
const GUARD: &str = r#"exec 3<&0
"$@" </dev/null &
rpid=$!
{ read -r _ <&3; kill "$rpid" 2>/dev/null; } &
wait "$rpid""#;

impl Drop for EmbeddedRedis {
    fn drop(&mut self) {
        drop(self.guard.take()); // end of file: the guard stops the server
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
