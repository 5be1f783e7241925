//! Redis over TLS: a real `redis-server` listening only on a TLS port, with a certificate of a
//! test authority made here by `openssl`; callq reaches it through a `rediss://` URL and runs a
//! call's whole routing life there, checking the server's certificate against the authority
//! named by `SSL_CERT_FILE`. A plain `redis://` URL to the same port, or a name the
//! certificate does not carry, gets an error, never a silent plaintext fallback.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callq::store::{Claim, OfferOutcome, Store, StoreOptions};
use support::*;

/// A TLS-only redis-server; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test authority, a server certificate for `localhost` and 127.0.0.1 signed by it, and a
/// redis-server on a free port speaking TLS only. Returns it with the authority's file.
fn tls_redis() -> (TlsRedis, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=callq test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extension file");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("redis-server")
        .current_dir(d)
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let ca = d.join("ca.crt");
    let server = TlsRedis {
        child,
        port,
        _dir: dir,
    };
    // up once the port takes connections
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "TLS redis-server did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, ca)
}

fn store_at(url: &str) -> Store {
    let opts = StoreOptions {
        pool_size: 4,
        response_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
        ..StoreOptions::default()
    };
    Store::connect_with(url, "tls", &opts).expect("the URL parses")
}

#[tokio::test]
async fn a_rediss_url_runs_routing_over_tls_and_nothing_falls_back_to_plaintext() {
    let (server, ca) = tls_redis();
    // the authority callq trusts for this test binary (rustls reads it with the system's)
    std::env::set_var("SSL_CERT_FILE", &ca);

    let store = store_at(&format!("rediss://localhost:{}/", server.port));
    store.configure_queue(&sales()).await.expect("over TLS");
    online_agent(&store, &agent("a1", &[("sales", 1)])).await;
    enqueue(&store, "CA1", "sales").await;
    let Claim::Offer(o) = store.claim(LEASE, 0).await.expect("claim") else {
        panic!("an offer over TLS");
    };
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    complete(&store, "CA1").await.expect("completed");
    assert_invariants(&store, &sids(&["CA1"])).await;

    // the same port without TLS: an error, not a plaintext session
    let plain = store_at(&format!("redis://127.0.0.1:{}/", server.port));
    assert!(plain.ping().await.is_err(), "plaintext to a TLS port");
    // a name the certificate does not carry: refused by the certificate check
    let wrong_name = store_at(&format!("rediss://127.0.0.2:{}/", server.port));
    assert!(
        wrong_name.ping().await.is_err(),
        "certificate for another name"
    );
}
