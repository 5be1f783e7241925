//! Child processes a drill can kill for real: the program (a `callq worker`, a `redis-server`)
//! runs under a small `sh` guard that reports its pid and holds our end of a pipe, so the
//! drill can send the program itself a SIGKILL, and, whatever happens to this process, the
//! program is stopped (SIGTERM) when the pipe closes and never outlives us.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

/// Runs `$@` with its stdout to /dev/null, prints its pid, and stops it (SIGTERM) when our
/// stdin reaches end of file. Exits with the program's status.
const GUARD: &str = r#"exec 3<&0
"$@" </dev/null >/dev/null &
rpid=$!
echo "$rpid"
exec 1>/dev/null
{ read -r _ <&3; kill "$rpid" 2>/dev/null; } &
wait "$rpid""#;

/// A running guarded program.
pub struct Guarded {
    child: Child,
    guard: Option<ChildStdin>,
    /// The program's own pid (not the guard's).
    pub pid: u32,
}

impl Guarded {
    /// Starts `program` with `args` and `envs`, its stderr appended to `log`.
    pub fn spawn<S: AsRef<OsStr>>(
        program: impl AsRef<OsStr>,
        args: &[S],
        envs: &[(&str, String)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(GUARD).arg("sh").arg(program.as_ref());
        for a in args {
            cmd.arg(a.as_ref());
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", program.as_ref().to_string_lossy()))?;
        let guard = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .context("reading the child's pid")?;
        }
        let pid = line
            .trim()
            .parse()
            .with_context(|| format!("the guard printed {line:?}, not a pid"))?;
        Ok(Self { child, guard, pid })
    }

    /// Whether the program is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -KILL <pid>` on the program itself; returns once it is gone.
    pub async fn sigkill(&mut self) -> anyhow::Result<()> {
        let status = tokio::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .await
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -KILL {} failed", self.pid);
        self.exited(Duration::from_secs(10)).await
    }

    /// Waits until the program has exited (by itself or by a signal).
    pub async fn exited(&mut self, within: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + within;
        while self.alive() {
            anyhow::ensure!(
                Instant::now() < end,
                "pid {} still running after {within:?}",
                self.pid
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        drop(self.guard.take()); // end of file: the guard sends SIGTERM
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
