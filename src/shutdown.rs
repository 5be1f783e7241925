//! Graceful shutdown: one signal every long-running task listens to. SIGTERM (Kubernetes) and
//! SIGINT (Ctrl-C) trip it; tasks stop taking new work and finish what they hold.

use tokio::sync::watch;

/// The sending side; `trigger` starts the shutdown.
#[derive(Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// The listening side, cheap to clone into every task.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Trip on SIGTERM or SIGINT.
    pub fn on_signals(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            me.trigger();
        });
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has started.
    pub async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return; // the trigger is gone: nobody can stop us any more, treat as stop
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
