//! Skills-based routing and widening against a real Redis: a call that requires skills goes
//! only to agents who have them at the level, a higher level first within a tier; a call
//! nobody can take yet does not hold up the line behind it; a call's reach widens step by step
//! as it waits (lower levels, more tiers, no skills, another queue's agents), and `claim` says
//! when the next step falls due so a worker looks again then. The skill index stays in step
//! with the ready sets through every agent change (invariant 6).

mod support;

use std::time::Duration;

use callq::store::*;
use support::*;

/// An agent of `queues` with `skills`, online and available.
async fn skilled(store: &Store, id: &str, queues: &[(&str, u32)], skills: &[(&str, u8)]) {
    let mut spec = agent(id, queues);
    spec.skills = Skills::new(skills.iter().copied());
    online_agent(store, &spec).await;
}

/// Queue `support`, longest idle first, whose calls require `skills`, widening by `widen`.
fn support(skills: &[(&str, u8)], widen: Vec<WidenStep>) -> QueueSettings {
    QueueSettings {
        skills: Skills::new(skills.iter().copied()),
        widen,
        ..queue("support", Strategy::LongestIdle)
    }
}

/// A call entering `q` that requires `skills` of its own.
async fn enqueue_needing(store: &Store, sid: &str, q: &str, skills: &[(&str, u8)]) {
    let mut call = holding(sid, q, "+15550001111");
    call.skills = Skills::new(skills.iter().copied());
    store.enqueue(&call).await.expect("enqueue");
}

/// Claim once; the (call, agent) offered, or the next due time on Redis' clock.
async fn claim_or_due(store: &Store) -> std::result::Result<(String, String), Option<i64>> {
    match store.claim(LEASE, 7).await.expect("claim") {
        Claim::Offer(o) => Ok((o.call_sid, o.agent_id)),
        Claim::Idle { next_due_ms } => Err(next_due_ms),
    }
}

fn step(after_ms: u64) -> WidenStep {
    WidenStep {
        after: Duration::from_millis(after_ms),
        ..WidenStep::default()
    }
}

#[tokio::test]
async fn a_call_goes_only_to_an_agent_with_the_skill_at_its_level() {
    let store = store_with(&[support(&[("billing", 3)], Vec::new())]).await;
    skilled(&store, "low", &[("support", 1)], &[("billing", 2)]).await;
    skilled(&store, "none", &[("support", 1)], &[]).await;
    enqueue(&store, "CA1", "support").await;
    assert_eq!(claimed(&store).await, None, "nobody has billing at level 3");
    assert_eq!(state(&store, "CA1").await, CallState::Waiting);
    skilled(
        &store,
        "able",
        &[("support", 1)],
        &[("billing", 3), ("spanish", 1)],
    )
    .await;
    assert_eq!(
        claimed(&store).await,
        Some(("CA1".into(), "able".into())),
        "the agent with billing 3 takes it"
    );
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn every_required_skill_must_be_met() {
    let store = store_with(&[support(&[], Vec::new())]).await;
    skilled(&store, "billing-only", &[("support", 1)], &[("billing", 5)]).await;
    skilled(
        &store,
        "spanish-low",
        &[("support", 1)],
        &[("billing", 5), ("spanish", 1)],
    )
    .await;
    enqueue_needing(&store, "CA1", "support", &[("billing", 2), ("spanish", 3)]).await;
    assert_eq!(claimed(&store).await, None);
    skilled(
        &store,
        "both",
        &[("support", 1)],
        &[("billing", 2), ("spanish", 4)],
    )
    .await;
    assert_eq!(claimed(&store).await, Some(("CA1".into(), "both".into())));
    // a call of the same queue without skills of its own requires the queue's (none)
    enqueue(&store, "CA2", "support").await;
    assert!(claimed(&store).await.is_some_and(|(c, _)| c == "CA2"));
}

#[tokio::test]
async fn within_a_tier_a_higher_level_is_offered_first_and_a_lower_tier_before_that() {
    let store = store_with(&[support(&[("billing", 2)], Vec::new())]).await;
    // `mid` has been idle longest, but `expert` has the higher level
    skilled(&store, "mid", &[("support", 1)], &[("billing", 3)]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    skilled(&store, "expert", &[("support", 1)], &[("billing", 5)]).await;
    skilled(&store, "tier2", &[("support", 2)], &[("billing", 5)]).await;
    enqueue(&store, "CA1", "support").await;
    enqueue(&store, "CA2", "support").await;
    enqueue(&store, "CA3", "support").await;
    assert_eq!(claimed(&store).await, Some(("CA1".into(), "expert".into())));
    assert_eq!(claimed(&store).await, Some(("CA2".into(), "mid".into())));
    assert_eq!(claimed(&store).await, Some(("CA3".into(), "tier2".into())));
    assert_invariants(&store, &sids(&["CA1", "CA2", "CA3"])).await;
}

#[tokio::test]
async fn a_call_nobody_can_take_yet_does_not_hold_up_the_calls_behind_it() {
    let q = QueueSettings {
        calls_carry_skills: true,
        ..support(&[], Vec::new())
    };
    let store = store_with(&[q]).await;
    skilled(&store, "a1", &[("support", 1)], &[("billing", 1)]).await;
    enqueue_needing(&store, "CA1", "support", &[("spanish", 2)]).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    enqueue(&store, "CA2", "support").await;
    assert_eq!(
        claimed(&store).await,
        Some(("CA2".into(), "a1".into())),
        "the second caller is served while the first waits for a Spanish speaker"
    );
    assert_eq!(state(&store, "CA1").await, CallState::Waiting);
    skilled(&store, "es", &[("support", 1)], &[("spanish", 2)]).await;
    assert_eq!(claimed(&store).await, Some(("CA1".into(), "es".into())));
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn widening_lowers_the_level_once_the_call_has_waited_and_claim_says_when() {
    let widen = vec![WidenStep {
        min_level: Some(2),
        ..step(1500)
    }];
    let store = store_with(&[support(&[("billing", 4)], widen)]).await;
    skilled(&store, "junior", &[("support", 1)], &[("billing", 2)]).await;
    enqueue(&store, "CA1", "support").await;
    let entered = call(&store, "CA1").await.entered_ms;
    match claim_or_due(&store).await {
        Err(Some(due)) => assert_eq!(
            due,
            entered + 1500,
            "the next look is due when the widening step is"
        ),
        other => panic!("expected nothing yet, due at the step: {other:?}"),
    }
    let offer = claim_within(&store, Duration::from_secs(30))
        .await
        .expect("offered once the step is due");
    assert_eq!(offer.agent_id, "junior");
    assert!(
        offer.waited >= Duration::from_millis(1500),
        "not before the step: waited {:?}",
        offer.waited
    );
}

#[tokio::test]
async fn widening_adds_tiers_step_by_step() {
    let widen = vec![WidenStep {
        tiers: Some(2),
        ..step(1000)
    }];
    let store = store_with(&[support(&[], widen)]).await;
    skilled(&store, "backup", &[("support", 2)], &[]).await;
    enqueue(&store, "CA1", "support").await;
    assert_eq!(
        claimed(&store).await,
        None,
        "tier 2 only after the step (a queue with a tiers step starts at tier 1)"
    );
    let offer = claim_within(&store, Duration::from_secs(30))
        .await
        .expect("tier 2 takes it after the step");
    assert_eq!(offer.agent_id, "backup");
    assert!(offer.waited >= Duration::from_millis(1000));
}

#[tokio::test]
async fn widening_can_drop_the_skills_and_reach_another_queue() {
    let widen = vec![WidenStep {
        any_skill: true,
        queue: Some("sales".into()),
        ..step(1000)
    }];
    let store = store_with(&[sales(), support(&[("billing", 5)], widen)]).await;
    skilled(&store, "seller", &[("sales", 1)], &[]).await;
    enqueue(&store, "CA1", "support").await;
    assert_eq!(claimed(&store).await, None);
    let offer = claim_within(&store, Duration::from_secs(30))
        .await
        .expect("a sales agent takes it after the step");
    assert_eq!(offer.agent_id, "seller");
    assert_eq!(offer.queue, "support", "the call stays a support call");
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn the_skill_index_follows_every_change_of_the_agent() {
    let store = store_with(&[sales(), support(&[("billing", 1)], Vec::new())]).await;
    skilled(
        &store,
        "a1",
        &[("sales", 1), ("support", 2)],
        &[("billing", 3), ("spanish", 5)],
    )
    .await;
    let indexed = |snap: &callq::store::read::Snapshot| {
        let mut v: Vec<String> = snap
            .ready_skills
            .iter()
            .filter(|(_, m)| m.iter().any(|id| id == "a1"))
            .map(|((q, t, s, l), _)| format!("{q}:{t}:{s}={l}"))
            .collect();
        v.sort();
        v
    };
    let snap = store.snapshot(&[]).await.expect("snapshot");
    assert_eq!(
        indexed(&snap),
        [
            "sales:1:billing=3",
            "sales:1:spanish=5",
            "support:2:billing=3",
            "support:2:spanish=5"
        ]
    );
    assert_invariants(&store, &[]).await;
    // paused: out of every set
    store
        .set_agent_status("a1", RequestedStatus::Paused, "lunch")
        .await
        .expect("paused");
    let snap = store.snapshot(&[]).await.expect("snapshot");
    assert!(indexed(&snap).is_empty(), "{:?}", indexed(&snap));
    // skills changed while available again: the old levels are gone, the new ones there
    store
        .set_agent_status("a1", RequestedStatus::Available, "")
        .await
        .expect("available");
    let mut spec = agent("a1", &[("support", 1)]);
    spec.skills = Skills::new([("billing", 4)]);
    store
        .upsert_agent(&spec, UpsertMode::Update)
        .await
        .expect("updated");
    let snap = store.snapshot(&[]).await.expect("snapshot");
    assert_eq!(indexed(&snap), ["support:1:billing=4"]);
    assert_invariants(&store, &[]).await;
    // reserved by an offer, then deleted: no trace left
    enqueue(&store, "CA1", "support").await;
    assert_eq!(claimed(&store).await, Some(("CA1".into(), "a1".into())));
    let snap = store.snapshot(&sids(&["CA1"])).await.expect("snapshot");
    assert!(indexed(&snap).is_empty());
    store.end_call("CA1", "test").await.expect("ended");
    store.delete_agent("a1").await.expect("deleted");
    let snap = store.snapshot(&sids(&["CA1"])).await.expect("snapshot");
    assert!(indexed(&snap).is_empty());
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn bad_skills_are_refused_before_anything_is_written() {
    let store = store_with(&[sales()]).await;
    let mut spec = agent("a1", &[("sales", 1)]);
    spec.skills = Skills::new([("billing", 6)]);
    let err = store
        .upsert_agent(&spec, UpsertMode::Upsert)
        .await
        .expect_err("level 6 refused");
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                what: "skill level",
                ..
            }
        ),
        "{err}"
    );
    spec.skills = Skills::new([("bill:ing", 2)]);
    assert!(store.upsert_agent(&spec, UpsertMode::Upsert).await.is_err());
    assert!(store.agent("a1").await.expect("read").is_none());
    let mut call = holding("CA1", "sales", "+1");
    call.skills = Skills::new([("billing", 0)]);
    assert!(store.enqueue(&call).await.is_err());
    assert!(store.call("CA1").await.expect("read").is_none());
}
