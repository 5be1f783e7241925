//! The cluster suite's Redis Cluster (tests/cluster.rs): the lab's local cluster (three
//! masters and three replicas on free ports, `callq::lab::cluster`), with what the tests ask of
//! it besides: stores on fresh centres, which node masters a centre's slot, a `CLUSTER
//! FAILOVER`, who waits in `BLPOP` where, and each node's own keys. Every failure panics with
//! its reason.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use callq::store::{Store, StoreOptions};

pub use callq::lab::cluster::cli;

use super::CENTRE;

/// A running local cluster; dropping it stops its six servers.
pub struct LocalCluster {
    inner: callq::lab::cluster::LocalCluster,
}

static SHARED: OnceLock<LocalCluster> = OnceLock::new();

/// The cluster this test binary's tests share, started on first use. A test that changes
/// the topology (a failover) starts a [`LocalCluster`] of its own.
pub fn shared() -> &'static LocalCluster {
    SHARED.get_or_init(LocalCluster::start)
}

impl LocalCluster {
    pub fn start() -> Self {
        match callq::lab::cluster::LocalCluster::start() {
            Ok(inner) => LocalCluster { inner },
            Err(e) => panic!("test harness: local cluster: {e:#}"),
        }
    }

    pub fn ports(&self) -> Vec<u16> {
        self.inner.ports()
    }

    /// `REDIS_URL` for callq: every node a seed.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// A store on a centre no other test uses, with generous timeouts (busy machine).
    pub fn fresh_store(&self) -> Store {
        let n = CENTRE.fetch_add(1, Ordering::SeqCst);
        self.store_for(&format!("c{}-{n}", std::process::id()))
    }

    pub fn store_for(&self, centre: &str) -> Store {
        let opts = StoreOptions {
            pool_size: 16,
            response_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            ..StoreOptions::default()
        };
        Store::connect_with(&self.url(), centre, &opts).expect("store connects to the cluster")
    }

    /// (master, replica) ports of the slot of `key`.
    pub fn master_and_replica(&self, key: &str) -> (u16, u16) {
        self.inner
            .master_and_replica(key)
            .unwrap_or_else(|| panic!("no master with a replica for {key}"))
    }

    /// `CLUSTER FAILOVER` on the replica of the master of `key`'s slot (the coordinated
    /// switch an operator makes, no write lost); returns (old master, new master) once every
    /// node says the replica is the master.
    pub fn fail_over(&self, key: &str) -> (u16, u16) {
        match self.inner.fail_over(key) {
            Ok(pair) => pair,
            Err(e) => panic!("failover: {e:#}"),
        }
    }

    /// Whether a connection named `name` waits in `BLPOP` on node `port` (`CLIENT LIST`).
    pub fn blocked_on(&self, port: u16, name: &str) -> bool {
        let want = format!("name={name} ");
        cli(port, &["CLIENT", "LIST"])
            .lines()
            .any(|l| l.contains(&want) && l.contains(" cmd=blpop "))
    }

    /// `FUNCTION FLUSH` on every master (replicas follow it; they refuse it themselves) and
    /// `SCRIPT FLUSH` on every node, as a restart or a new master without a copy of the data
    /// would have it: neither the routing library nor a script is left.
    pub fn flush_functions_and_scripts(&self) {
        for p in self.ports() {
            if cli(p, &["ROLE"]).starts_with("master") {
                assert_eq!(cli(p, &["FUNCTION", "FLUSH"]).trim(), "OK");
            }
            assert_eq!(cli(p, &["SCRIPT", "FLUSH"]).trim(), "OK");
        }
    }

    /// The function libraries node `port` holds (`FUNCTION LIST`: their names).
    pub fn libraries_on(&self, port: u16) -> Vec<String> {
        let list = cli(port, &["FUNCTION", "LIST"]);
        let mut lines = list.lines();
        let mut names = Vec::new();
        while let Some(l) = lines.next() {
            if l.trim() == "library_name" {
                if let Some(name) = lines.next() {
                    names.push(name.trim().to_string());
                }
            }
        }
        names
    }

    /// Keys of `pattern` on node `port` (only that node's own).
    pub fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        cli(port, &["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}
