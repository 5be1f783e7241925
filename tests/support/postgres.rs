//! PostgreSQL for the tests of the archive and of reconcile: the machine's server
//! (127.0.0.1:5432, user postgres, trust; `CALLQ_TEST_PG` names another) and a database per
//! test, dropped when the test ends. Without a server the tests fail and say so.

use tokio_postgres::Client;

/// The server the tests use, without a database name.
pub fn pg_base() -> String {
    std::env::var("CALLQ_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub async fn pg_connect(url: &str) -> Client {
    let (client, conn) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "the archive and reconcile tests need PostgreSQL at {url} (user postgres, trust auth; \
             or set CALLQ_TEST_PG=postgres://user@host:port): {e}"
        ),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of the test's own, dropped when this is dropped.
pub struct TestDb {
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("callq_t_{:016x}", rand::random::<u64>());
        let admin = pg_connect(&format!("{}/postgres", pg_base())).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_base(), self.name)
    }

    pub async fn client(&self) -> Client {
        pg_connect(&self.url()).await
    }

    /// Refuse every new connection and end the open ones: PostgreSQL as if down.
    pub async fn go_down(&self) {
        let admin = pg_connect(&format!("{}/postgres", pg_base())).await;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}';",
                self.name
            ))
            .await
            .expect("take the database down");
    }

    pub async fn come_back(&self) {
        let admin = pg_connect(&format!("{}/postgres", pg_base())).await;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .await
            .expect("bring the database back");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, base) = (self.name.clone(), pg_base());
        // a runtime of its own: the test's may be shutting down
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
                            .await
                    {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
