//! The operations endpoints of `callq serve`: probes, metrics and the wallboard, against a real
//! Redis and against one that cannot be reached.

mod common;

use callq::config::CentreConfig;
use callq::store::Store;
use common::*;

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(&url).await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let server = spawn_server(CentreConfig::demo()).await;
    assert_eq!(
        get(format!("{}/healthz", server.base)).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(format!("{}/readyz", server.base)).await,
        (200, "ready\n".into())
    );
    let (status, _) = get(format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn readiness_fails_when_redis_is_unreachable_but_liveness_holds() {
    let dead = Store::connect("redis://127.0.0.1:1/", "dead", 2).expect("store");
    let server = spawn_server_on(dead, CentreConfig::demo()).await;
    assert_eq!(get(format!("{}/healthz", server.base)).await.0, 200);
    assert_eq!(get(format!("{}/readyz", server.base)).await.0, 503);
    assert_eq!(get(format!("{}/wallboard/data", server.base)).await.0, 503);
}

#[tokio::test]
async fn the_wallboard_shows_queues_and_recent_transitions_without_caller_numbers() {
    let server = spawn_server(CentreConfig::demo()).await;
    let store = &server.state.store;
    store
        .enqueue(&holding("CAwall1", "sales", "+15559998888"))
        .await
        .expect("enqueue");
    let (status, page) = get(format!("{}/wallboard", server.base)).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>callq wallboard</title>"));
    let (status, body) = get(format!("{}/wallboard/data", server.base)).await;
    assert_eq!(status, 200);
    let d: serde_json::Value = serde_json::from_str(&body).expect("json");
    let sales = d["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "sales")
        .expect("sales queue");
    assert_eq!(sales["waiting"], 1);
    assert!(d["events"][0].as_str().expect("event").contains("enqueue"));
    assert!(d["events"][0].as_str().expect("event").contains("CAwall1"));
    assert!(
        !body.contains("+15559998888"),
        "no caller numbers on the wallboard"
    );
}
