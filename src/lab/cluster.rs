//! A local Redis Cluster, for the failover drill and the cluster test suite (tests/support
//! wraps it): three masters and three replicas, each a lab `redis-server`
//! ([`EmbeddedRedis::start_cluster_node`]) on free ports, formed with `redis-cli --cluster
//! create --cluster-replicas 1`, ready once every node says `cluster_state:ok` with all 16384
//! slots and six nodes known; which node masters a key's slot, and `CLUSTER FAILOVER` of that
//! master to its replica. Its calls block: run them on a blocking thread.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::lab::embedded_redis::EmbeddedRedis;

/// A running local cluster; dropping it stops its six servers.
pub struct LocalCluster {
    nodes: Vec<EmbeddedRedis>,
}

/// How long forming the cluster or a failover may take on a busy machine.
const PATIENCE: Duration = Duration::from_secs(90);

impl LocalCluster {
    pub fn start() -> anyhow::Result<Self> {
        let nodes = (0..6)
            .map(|_| EmbeddedRedis::start_cluster_node())
            .collect::<Result<Vec<_>, _>>()
            .context("starting a cluster node")?;
        let me = LocalCluster { nodes };
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(me.addrs())
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .context("running redis-cli --cluster create")?;
        anyhow::ensure!(
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
                let role = cli(*p, &["ROLE"]);
                role.starts_with("master") || role.contains("connected")
            })
        })?;
        Ok(me)
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(EmbeddedRedis::port).collect()
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

    /// (master, replica) ports of the slot of `key`, as the first node sees the cluster.
    pub fn master_and_replica(&self, key: &str) -> Option<(u16, u16)> {
        self.master_and_replica_seen_by(self.ports()[0], key)
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

    /// `CLUSTER FAILOVER` on the replica of the master of `key`'s slot (the coordinated switch
    /// an operator makes); returns (old master, new master) once every node says the replica
    /// is the master.
    pub fn fail_over(&self, key: &str) -> anyhow::Result<(u16, u16)> {
        let (master, replica) = self
            .master_and_replica(key)
            .with_context(|| format!("no master with a replica for {key}"))?;
        let ok = cli(replica, &["CLUSTER", "FAILOVER"]);
        anyhow::ensure!(
            ok.trim() == "OK",
            "CLUSTER FAILOVER on {replica}: {}",
            ok.trim()
        );
        self.until("every node sees the replica as the master", || {
            self.ports().iter().all(|p| {
                self.master_and_replica_seen_by(*p, key)
                    .is_some_and(|(m, _)| m == replica)
            })
        })?;
        Ok((master, replica))
    }

    fn until(&self, what: &str, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
        let end = Instant::now() + PATIENCE;
        while !ok() {
            anyhow::ensure!(
                Instant::now() < end,
                "local cluster: not {what} within {PATIENCE:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
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
