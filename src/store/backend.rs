//! Which Redis the store talks to: one server, or a Redis Cluster through the cluster-aware
//! client (MOVED/ASK followed, slots refreshed after a failover or resharding).
//!
//! `REDIS_URL` says which (see [`RedisTarget::parse`]): `redis://host:6379/` is one server;
//! `redis+cluster://[user:pass@]host1:6379,host2:6379/`, or several comma-separated `redis://`
//! URLs, is a cluster reached through those seed nodes. `rediss://` and `rediss+cluster://`
//! connect over TLS (rustls), checking the server's certificate against the system's roots
//! or the file `SSL_CERT_FILE` names.
//!
//! Every key of a centre carries the hash tag `{C}`, so a centre lives in one slot: scripts
//! and pipelines go whole to the slot's master. The few commands without a key are routed
//! here on purpose, to that same master ([`Backend::ping`], [`Backend::time`]); the worker's
//! blocking `BLPOP` gets a plain connection to that master ([`Backend::wake_client`]).

use deadpool::managed;
use redis::aio::ConnectionLike;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture, Value};

use super::{Result, StoreError, StoreOptions};

/// Where Redis is, from `REDIS_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (or a proxy that hides a cluster).
    Single(String),
    /// A Redis Cluster, through these seed nodes (`redis://host:port` each).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// `redis+cluster://` / `rediss+cluster://` with comma-separated `host:port`s (credentials
    /// once, before the first), or several comma-separated URLs: a cluster. Anything else: one
    /// server. Every URL is checked here, so a typo fails at start, not at the first call.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let bad = |why: &'static str| StoreError::Invalid {
            what: "REDIS_URL",
            value: redact(url),
            why,
        };
        let cluster_scheme = [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ]
        .into_iter()
        .find_map(|(s, plain)| url.strip_prefix(s).map(|rest| (plain, rest)));
        let target = if let Some((plain, rest)) = cluster_scheme {
            let (auth, tail) = match rest.rfind('@') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => ("", rest),
            };
            let hosts = tail.split('/').next().unwrap_or("");
            let seeds: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| format!("{plain}{auth}{h}"))
                .collect();
            if seeds.is_empty() {
                return Err(bad(
                    "name at least one seed node: redis+cluster://host:port,...",
                ));
            }
            RedisTarget::Cluster(seeds)
        } else if url.contains(',') {
            let seeds: Vec<String> = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect();
            RedisTarget::Cluster(seeds)
        } else {
            RedisTarget::Single(url.to_string())
        };
        let urls = match &target {
            RedisTarget::Single(u) => std::slice::from_ref(u),
            RedisTarget::Cluster(seeds) => seeds.as_slice(),
        };
        for u in urls {
            u.as_str()
                .into_connection_info()
                .map_err(|_| bad("not a redis:// (or rediss://, TLS) URL"))?;
        }
        Ok(target)
    }
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
    .chars()
    .take(200)
    .collect()
}

/// How recently a pooled connection must have been taken out for it to go out again without
/// a PING first. Its last use did not break it (a use that did drops it: see [`Conn`]), so
/// within this a PING would only cost a round trip as dear as the command it precedes.
const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// A pool of connections to one server (each one multiplexed): deadpool-redis' manager, whose
/// recycle PINGs every connection each time it leaves the pool, a round trip as dear as the
/// command it precedes (it doubled the round trips of a webhook or a transition). Here that
/// check runs only on a connection idle for longer than [`FRESH`]; the pool never gets back a
/// connection whose use failed at the connection level ([`Conn`]).
pub struct SingleManager(deadpool_redis::Manager);

impl managed::Manager for SingleManager {
    type Type = <deadpool_redis::Manager as managed::Manager>::Type;
    type Error = redis::RedisError;

    async fn create(&self) -> std::result::Result<Self::Type, redis::RedisError> {
        self.0.create().await
    }

    async fn recycle(
        &self,
        conn: &mut Self::Type,
        metrics: &managed::Metrics,
    ) -> managed::RecycleResult<redis::RedisError> {
        if metrics.last_used() < FRESH {
            return Ok(());
        }
        self.0.recycle(conn, metrics).await
    }
}

type SinglePool = managed::Pool<SingleManager>;

/// A pool of cluster connections. Built on deadpool's managed pool (as deadpool-redis' own
/// cluster pool is) so that the client's timeouts can be set: deadpool-redis' cluster
/// `Manager` takes only the seed URLs and leaves the client without a response timeout, so
/// a node that stops answering would hold every call forever. Here a command (its MOVED/ASK
/// redirections and retries included) fails after `StoreOptions::response_timeout`.
pub struct ClusterManager {
    client: ClusterClient,
    route: Route,
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = redis::RedisError;

    async fn create(&self) -> std::result::Result<ClusterConnection, redis::RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        metrics: &managed::Metrics,
    ) -> managed::RecycleResult<redis::RedisError> {
        if metrics.last_used() < FRESH {
            return Ok(());
        }
        // PING goes to every node by default: one node down would fail every recycle.
        conn.route_command(redis::cmd("PING"), master_of(self.route))
            .await?;
        Ok(())
    }
}

fn master_of(route: Route) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route))
}

type ClusterPool = managed::Pool<ClusterManager>;

/// The connection pool, for one server or a cluster.
#[derive(Clone)]
pub enum Backend {
    Single {
        pool: SinglePool,
        url: String,
    },
    Cluster {
        pool: ClusterPool,
        /// The first seed: credentials and TLS for the direct connection to the slot's master
        /// (boxed: with TLS it is far bigger than the one-server variant).
        seed: Box<ConnectionInfo>,
        /// The centre's slot, on its master.
        route: Route,
        /// The key prefix (`callq:{C}:`), for `CLUSTER KEYSLOT`.
        prefix: String,
    },
}

impl Backend {
    pub fn connect(target: &RedisTarget, prefix: &str, opts: &StoreOptions) -> Result<Self> {
        match target {
            RedisTarget::Single(url) => {
                let conn_cfg = redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(opts.response_timeout))
                    .set_connection_timeout(Some(opts.connect_timeout));
                let manager = SingleManager(deadpool_redis::Manager::new_with_config(
                    url.as_str(),
                    conn_cfg,
                )?);
                let pool = SinglePool::builder(manager)
                    .max_size(opts.pool_size.max(1))
                    .build()
                    .map_err(|e| StoreError::PoolSetup(e.to_string()))?;
                Ok(Backend::Single {
                    pool,
                    url: url.clone(),
                })
            }
            RedisTarget::Cluster(seeds) => {
                let infos = seeds
                    .iter()
                    .map(|s| s.as_str().into_connection_info())
                    .collect::<redis::RedisResult<Vec<_>>>()?;
                let seed = infos
                    .first()
                    .cloned()
                    .ok_or_else(|| StoreError::PoolSetup("no seed node".to_string()))?;
                let client = ClusterClientBuilder::new(infos)
                    .connection_timeout(opts.connect_timeout)
                    .response_timeout(opts.response_timeout)
                    .build()?;
                let route = Route::with_key(prefix, SlotAddr::Master);
                let pool = ClusterPool::builder(ClusterManager { client, route })
                    .max_size(opts.pool_size.max(1))
                    .build()
                    .map_err(|e| StoreError::PoolSetup(e.to_string()))?;
                Ok(Backend::Cluster {
                    pool,
                    seed: Box::new(seed),
                    route,
                    prefix: prefix.to_string(),
                })
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster { .. })
    }

    pub async fn get(&self) -> Result<Conn> {
        let to = |c| Conn {
            inner: Some(c),
            broken: false,
        };
        let got = match self {
            Backend::Single { pool, .. } => pool.get().await.map(|c| to(Pooled::Single(c))),
            Backend::Cluster { pool, .. } => pool.get().await.map(|c| to(Pooled::Cluster(c))),
        };
        match got {
            Ok(c) => Ok(c),
            Err(managed::PoolError::Backend(e)) => Err(e.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Run a command that has no key on the server, or on the centre's master.
    async fn keyless(&self, cmd: Cmd) -> Result<Value> {
        let mut c = self.get().await?;
        match (self, c.inner.as_mut()) {
            (Backend::Cluster { route, .. }, Some(Pooled::Cluster(cluster))) => {
                let reply = cluster.route_command(cmd, master_of(*route)).await;
                c.note(&reply);
                Ok(reply?)
            }
            _ => Ok(cmd.query_async(&mut c).await?),
        }
    }

    /// PING the server (on a cluster: the centre's master).
    pub async fn ping(&self) -> Result<()> {
        self.keyless(redis::cmd("PING")).await?;
        Ok(())
    }

    /// Redis' `TIME` (on a cluster: the centre's master's clock, the one its scripts read).
    pub async fn time(&self) -> Result<(i64, i64)> {
        let v = self.keyless(redis::cmd("TIME")).await?;
        Ok(redis::from_redis_value(v)?)
    }

    /// A client for a plain connection to the server holding the centre's keys (on a cluster:
    /// the slot's master as the cluster says now), for the worker's blocking `BLPOP` and the
    /// `CLIENT UNBLOCK` that ends it early, which must reach the same node. After a failover
    /// that node answers MOVED or drops the connection; the worker then asks again.
    pub async fn wake_client(&self) -> Result<redis::Client> {
        match self {
            Backend::Single { url, .. } => Ok(redis::Client::open(url.as_str())?),
            Backend::Cluster { seed, prefix, .. } => {
                let slot: i64 = redis::from_redis_value(
                    self.keyless(redis::cmd("CLUSTER").arg("KEYSLOT").arg(prefix).clone())
                        .await?,
                )?;
                let slots = self
                    .keyless(redis::cmd("CLUSTER").arg("SLOTS").clone())
                    .await?;
                let (host, port) = master_for(&slots, slot).ok_or_else(|| {
                    StoreError::PoolSetup(format!("no master serves slot {slot} (CLUSTER SLOTS)"))
                })?;
                let host = if host.is_empty() || host == "?" {
                    seed_host(seed.addr()).unwrap_or(host)
                } else {
                    host
                };
                let addr = match seed.addr() {
                    ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => ConnectionAddr::Tcp(host, port),
                };
                Ok(redis::Client::open(seed.clone().set_addr(addr))?)
            }
        }
    }
}

fn seed_host(addr: &ConnectionAddr) -> Option<String> {
    match addr {
        ConnectionAddr::Tcp(h, _) | ConnectionAddr::TcpTls { host: h, .. } => Some(h.clone()),
        _ => None,
    }
}

/// The master's (host, port) for `slot` in a `CLUSTER SLOTS` reply:
/// `[[start, end, [host, port, id, ..], replica..], ..]`.
fn master_for(reply: &Value, slot: i64) -> Option<(String, u16)> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(r) = range else { return None };
        let start: i64 = redis::from_redis_value(r.first()?.clone()).ok()?;
        let end: i64 = redis::from_redis_value(r.get(1)?.clone()).ok()?;
        if slot < start || slot > end {
            return None;
        }
        let Value::Array(node) = r.get(2)? else {
            return None;
        };
        let host: String = redis::from_redis_value(node.first()?.clone()).ok()?;
        let port: u16 = redis::from_redis_value(node.get(1)?.clone()).ok()?;
        Some((host, port))
    })
}

/// A pooled connection: to the one server, or a cluster connection that routes each command
/// (and each pipeline, whole) to the master of its key's slot. A command that fails at the
/// connection level (reset, dropped, refused: the redis crate's "unrecoverable" errors)
/// marks it broken, and a broken connection is dropped rather than returned to the pool, so
/// the pool's skipped PING ([`FRESH`]) never hands it out again.
pub struct Conn {
    /// Always Some until dropped.
    inner: Option<Pooled>,
    broken: bool,
}

enum Pooled {
    Single(managed::Object<SingleManager>),
    Cluster(managed::Object<ClusterManager>),
}

impl Conn {
    /// Mark the connection broken when `reply` failed at the connection level.
    fn note<T>(&mut self, reply: &redis::RedisResult<T>) {
        if let Err(e) = reply {
            if e.is_unrecoverable_error() {
                self.broken = true;
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.broken {
            return;
        }
        match self.inner.take() {
            Some(Pooled::Single(c)) => drop(managed::Object::take(c)),
            Some(Pooled::Cluster(c)) => drop(managed::Object::take(c)),
            None => {}
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let reply = match self.inner.as_mut() {
                Some(Pooled::Single(c)) => c.req_packed_command(cmd).await,
                Some(Pooled::Cluster(c)) => c.req_packed_command(cmd).await,
                None => Err(gone()),
            };
            self.note(&reply);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let reply = match self.inner.as_mut() {
                Some(Pooled::Single(c)) => c.req_packed_commands(cmd, offset, count).await,
                Some(Pooled::Cluster(c)) => c.req_packed_commands(cmd, offset, count).await,
                None => Err(gone()),
            };
            self.note(&reply);
            reply
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Some(Pooled::Single(c)) => c.get_db(),
            Some(Pooled::Cluster(c)) => c.get_db(),
            None => 0,
        }
    }
}

/// The error of a connection already given back (cannot happen: `inner` is taken only on drop).
fn gone() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "pooled connection already released",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_single_or_cluster() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379/").ok(),
            Some(RedisTarget::Single("redis://127.0.0.1:6379/".into()))
        );
        assert_eq!(
            RedisTarget::parse("redis+cluster://:pw@a:7000,b:7001/").ok(),
            Some(RedisTarget::Cluster(vec![
                "redis://:pw@a:7000".into(),
                "redis://:pw@b:7001".into()
            ]))
        );
        // TLS: each seed keeps the scheme
        assert_eq!(
            RedisTarget::parse("rediss+cluster://a:7000,b:7001").ok(),
            Some(RedisTarget::Cluster(vec![
                "rediss://a:7000".into(),
                "rediss://b:7001".into()
            ]))
        );
        assert_eq!(
            RedisTarget::parse("rediss://a:6380/").ok(),
            Some(RedisTarget::Single("rediss://a:6380/".into()))
        );
        assert_eq!(
            RedisTarget::parse("redis://a:7000, redis://b:7001").ok(),
            Some(RedisTarget::Cluster(vec![
                "redis://a:7000".into(),
                "redis://b:7001".into()
            ]))
        );
        assert!(RedisTarget::parse("redis+cluster://").is_err());
        assert!(RedisTarget::parse("http://a:1,http://b:2").is_err());
    }

    #[test]
    fn errors_hide_the_password() {
        let e = RedisTarget::parse("redis+cluster://:secret@").err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("REDIS_URL"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[test]
    fn cluster_slots_reply_names_the_master() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
                node("10.0.0.4", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
            ]),
        ]);
        assert_eq!(master_for(&reply, 0), Some(("10.0.0.1".into(), 7000)));
        assert_eq!(master_for(&reply, 9000), Some(("10.0.0.2".into(), 7001)));
        assert_eq!(master_for(&reply, 16384), None);
    }
}
