//! A real local Redis Cluster for the cluster suite (tests/cluster.rs): three masters and three
//! replicas, each a lab `redis-server` on free ports, formed with `redis-cli --cluster create
//! --cluster-replicas 1`, ready once every node says `cluster_state:ok` with all 16384 slots
//! and all six nodes known. Also: which node masters a centre's slot, and `CLUSTER FAILOVER`
//! of that master to its replica.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use callq::lab::embedded_redis::EmbeddedRedis;
use callq::store::{Store, StoreOptions};

use super::CENTRE;

/// A running local cluster; dropping it stops its six servers.
pub struct LocalCluster {
    nodes: Vec<EmbeddedRedis>,
}

static SHARED: OnceLock<LocalCluster> = OnceLock::new();

/// The cluster this test binary's tests share, started on first use. A test that changes
/// the topology (a failover) starts a [`LocalCluster`] of its own.
pub fn shared() -> &'static LocalCluster {
    SHARED.get_or_init(LocalCluster::start)
}

/// How long forming the cluster or a failover may take on a busy machine.
const PATIENCE: Duration = Duration::from_secs(90);

impl LocalCluster {
    pub fn start() -> Self {
        let nodes: Vec<EmbeddedRedis> = (0..6)
            .map(|_| match EmbeddedRedis::start_cluster_node() {
                Ok(n) => n,
                Err(e) => panic!("test harness: cluster node: {e}"),
            })
            .collect();
        let me = LocalCluster { nodes };
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(me.addrs())
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        me.until("every node sees the cluster ok", || {
            me.ports().iter().all(|p| {
                let info = cli(*p, &["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains("cluster_known_nodes:6")
            }) && me.ports().iter().all(|p| {
                // every replica has its master's data stream
                let role = cli(*p, &["ROLE"]);
                role.starts_with("master") || role.contains("connected")
            })
        });
        me
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port()).collect()
    }

    fn addrs(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// `REDIS_URL` for callq: every node a seed.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}/", self.addrs().join(","))
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

    /// (master, replica) ports of the slot of `key`, as node `asked` sees the cluster.
    fn master_and_replica_seen_by(&self, asked: u16, key: &str) -> Option<(u16, u16)> {
        let slot: u32 = cli(asked, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .ok()?;
        let nodes = cli(asked, &["CLUSTER", "NODES"]);
        let lines: Vec<Vec<&str>> = nodes
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let port_of = |f: &Vec<&str>| -> Option<u16> {
            let addr = f.get(1)?.split('@').next()?;
            addr.rsplit(':').next()?.parse().ok()
        };
        let master = lines.iter().find(|f| {
            let flags = f.get(2).copied().unwrap_or("");
            flags.contains("master")
                && !flags.contains("fail")
                && f.iter().skip(8).any(|range| {
                    let mut it = range.split('-');
                    let a = it.next().and_then(|a| a.parse::<u32>().ok());
                    let b = it.next().and_then(|b| b.parse::<u32>().ok()).or(a);
                    matches!((a, b), (Some(a), Some(b)) if a <= slot && slot <= b)
                })
        })?;
        let replica = lines.iter().find(|f| {
            let flags = f.get(2).copied().unwrap_or("");
            flags.contains("slave") && !flags.contains("fail") && f.get(3) == master.first()
        })?;
        Some((port_of(master)?, port_of(replica)?))
    }

    /// (master, replica) ports of the slot of `key`.
    pub fn master_and_replica(&self, key: &str) -> (u16, u16) {
        let asked = self.ports()[0];
        self.master_and_replica_seen_by(asked, key)
            .unwrap_or_else(|| panic!("no master with a replica for {key}"))
    }

    /// `CLUSTER FAILOVER` on the replica of the master of `key`'s slot (the coordinated
    /// switch an operator makes, no write lost); returns (old master, new master) once every
    /// node says the replica is the master.
    pub fn fail_over(&self, key: &str) -> (u16, u16) {
        let (master, replica) = self.master_and_replica(key);
        let ok = cli(replica, &["CLUSTER", "FAILOVER"]);
        assert_eq!(ok.trim(), "OK", "CLUSTER FAILOVER on {replica}");
        self.until("every node sees the replica as the master", || {
            self.ports().iter().all(|p| {
                self.master_and_replica_seen_by(*p, key)
                    .is_some_and(|(m, _)| m == replica)
            })
        });
        (master, replica)
    }

    /// Whether a connection named `name` waits in `BLPOP` on node `port` (`CLIENT LIST`).
    pub fn blocked_on(&self, port: u16, name: &str) -> bool {
        let want = format!("name={name} ");
        cli(port, &["CLIENT", "LIST"])
            .lines()
            .any(|l| l.contains(&want) && l.contains(" cmd=blpop "))
    }

    /// Every node: `SCRIPT FLUSH` (as a restart or a new master would have it).
    pub fn flush_scripts(&self) {
        for p in self.ports() {
            assert_eq!(cli(p, &["SCRIPT", "FLUSH"]).trim(), "OK");
        }
    }

    /// Keys of `pattern` on node `port` (only that node's own).
    pub fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        cli(port, &["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + PATIENCE;
        while !ok() {
            assert!(
                Instant::now() < end,
                "local cluster: {what} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `redis-cli -p <port> <args>`'s output ("" when it cannot run).
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
