//! The `ring_all` strategy against a real Redis: one offer reserves every live, ready agent of
//! the best tier who meets the call's skills; the first of them to answer gets the call and the
//! others are released at once (no miss) and can take the next call; a late answer of another
//! never connects a second agent; one agent's leg ending unanswered releases that agent alone,
//! the `<Dial>` ending unanswered puts the call back in line and releases all. The routing
//! invariants (docs/design.md) hold after each step.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use callq::store::*;
use support::*;

/// Queue `desk`, ring_all.
fn desk() -> QueueSettings {
    queue("desk", Strategy::RingAll)
}

/// An agent of `queues` with `skills`, online and available.
async fn skilled(store: &Store, id: &str, queues: &[(&str, u32)], skills: &[(&str, u8)]) {
    let mut spec = agent(id, queues);
    spec.skills = Skills::new(skills.iter().copied());
    online_agent(store, &spec).await;
}

/// A ring_all centre: `desk` with d1, d2, d3 at tier 1 and d9 at tier 2.
async fn floor() -> Store {
    let store = store_with(&[desk()]).await;
    for id in ["d1", "d2", "d3"] {
        online_agent(&store, &agent(id, &[("desk", 1)])).await;
    }
    online_agent(&store, &agent("d9", &[("desk", 2)])).await;
    store
}

/// Every agent an offer rings.
fn rung(o: &Offer) -> BTreeSet<String> {
    o.agents().into_iter().map(|(id, _)| id).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn misses(store: &Store, id: &str) -> u32 {
    agent_rec(store, id).await.misses
}

#[tokio::test]
async fn one_offer_rings_every_ready_agent_of_the_best_tier() {
    let store = floor().await;
    store
        .set_agent_status("d3", RequestedStatus::Paused, "lunch")
        .await
        .expect("paused");
    let o = enter_offered(&store, "CA1", "desk").await;
    // d3 is paused, d9 is of a later tier: d1 and d2 ring, both reserved under one offer
    assert_eq!(rung(&o), set(&["d1", "d2"]));
    assert_eq!(o.also.len(), 1);
    assert_eq!(o.attempt, 1);
    for (id, identity) in o.agents() {
        assert_eq!(identity, format!("client-{id}"));
        assert_eq!(status(&store, &id).await, AgentStatus::Reserved, "{id}");
    }
    assert_eq!(status(&store, "d9").await, AgentStatus::Available);
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::Offered);
    assert_eq!(c.agent.as_deref(), Some(o.agent_id.as_str()));
    assert_eq!(c.group.iter().cloned().collect::<BTreeSet<_>>(), rung(&o));
    assert_eq!(c.ringing, c.group);
    // nobody else is left at tier 1: the next call goes to tier 2, d9 alone (a plain offer)
    let o2 = enter_offered(&store, "CA2", "desk").await;
    assert_eq!(rung(&o2), set(&["d9"]));
    assert!(call(&store, "CA2").await.group.is_empty());
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn only_agents_with_the_call_s_skills_ring_the_better_level_first() {
    let q = QueueSettings {
        skills: Skills::new([("billing", 2)]),
        ..desk()
    };
    let store = store_with(&[q]).await;
    skilled(&store, "low", &[("desk", 1)], &[("billing", 1)]).await;
    skilled(&store, "mid", &[("desk", 1)], &[("billing", 2)]).await;
    skilled(&store, "top", &[("desk", 1)], &[("billing", 4)]).await;
    skilled(&store, "later", &[("desk", 2)], &[("billing", 5)]).await;
    let o = enter_offered(&store, "CA1", "desk").await;
    assert_eq!(o.agent_id, "top", "the highest level leads");
    assert_eq!(rung(&o), set(&["mid", "top"]));
    assert_eq!(status(&store, "low").await, AgentStatus::Available);
    assert_eq!(status(&store, "later").await, AgentStatus::Available);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn the_first_to_answer_gets_the_call_and_the_others_are_free_at_once() {
    let store = floor().await;
    let o = enter_offered(&store, "CA1", "desk").await;
    assert_eq!(rung(&o), set(&["d1", "d2", "d3"]));
    // d2 answers first (not the agent the <Dial> action names)
    let r = store
        .leg_result(&o.offer_ref_for("d2"), OfferOutcome::Answered, "CAlegd2")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::Connected);
    assert_eq!(c.agent.as_deref(), Some("d2"));
    assert!(c.ringing.is_empty());
    assert_eq!(c.leg_sid.as_deref(), Some("CAlegd2"));
    assert_eq!(status(&store, "d2").await, AgentStatus::Busy);
    for id in ["d1", "d3"] {
        assert_eq!(status(&store, id).await, AgentStatus::Available, "{id}");
        assert_eq!(
            misses(&store, id).await,
            0,
            "{id} rang for nothing: no miss"
        );
    }
    assert_invariants(&store, &sids(&["CA1"])).await;
    // the released agents take the next call at once, together
    let o2 = enter_offered(&store, "CA2", "desk").await;
    assert_eq!(rung(&o2), set(&["d1", "d3"]));
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn a_late_second_answer_never_connects_a_second_agent() {
    let store = floor().await;
    let o = enter_offered(&store, "CA1", "desk").await;
    let first = store
        .offer_result(&o.offer_ref_for("d3"), OfferOutcome::Answered, "CAleg3")
        .await
        .expect("answered");
    assert_eq!(first, OfferResult::Connected);
    for id in ["d1", "d2"] {
        let late = store
            .leg_result(&o.offer_ref_for(id), OfferOutcome::Answered, "CAlate")
            .await
            .expect("late answer");
        assert_eq!(late, OfferResult::Stale(Some(CallState::Connected)), "{id}");
        // nor does that leg's end, nor its cancel
        let done = store
            .complete("CA1", Some(&o.offer_ref_for(id)), EndSource::Leg)
            .await
            .expect("leg end");
        assert_eq!(done, Completion::Stale(Some(CallState::Connected)), "{id}");
        let canceled = store
            .leg_result(&o.offer_ref_for(id), OfferOutcome::Canceled, "")
            .await
            .expect("cancel");
        assert_eq!(canceled, OfferResult::Stale(Some(CallState::Connected)));
    }
    let c = call(&store, "CA1").await;
    assert_eq!(
        (c.state, c.agent.as_deref()),
        (CallState::Connected, Some("d3"))
    );
    assert_eq!(status(&store, "d3").await, AgentStatus::Busy);
    assert_invariants(&store, &sids(&["CA1"])).await;
    // the <Dial> ends after the conversation, naming the offer by its first agent: the call
    // completes with the agent who took it
    let done = store
        .complete("CA1", Some(&o.offer_ref()), EndSource::Dial)
        .await
        .expect("dial end");
    assert_eq!(done, Completion::Completed("d3".into()));
    assert_eq!(agent_rec(&store, "d3").await.handled, 1);
    for id in ["d1", "d2"] {
        assert_eq!(agent_rec(&store, id).await.handled, 0, "{id}");
    }
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn no_answer_puts_the_call_back_in_line_and_releases_every_agent() {
    let q = QueueSettings {
        no_answer_delay: Duration::from_secs(60),
        ..desk()
    };
    let store = store_with(&[q]).await;
    for id in ["d1", "d2", "d3"] {
        online_agent(&store, &agent(id, &[("desk", 1)])).await;
    }
    let o = enter_offered(&store, "CA1", "desk").await;
    // d2 declines: d2 alone is released (busy counts a miss), the others still ring
    let r = store
        .leg_result(&o.offer_ref_for("d2"), OfferOutcome::Busy, "")
        .await
        .expect("declined");
    assert_eq!(r, OfferResult::Released(AgentStatus::Wrapup));
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::Offered);
    assert_eq!(
        c.ringing.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["d1", "d3"])
    );
    assert_eq!(misses(&store, "d2").await, 1);
    assert_invariants(&store, &sids(&["CA1"])).await;
    // a repeat of d2's result changes nothing
    let again = store
        .leg_result(&o.offer_ref_for("d2"), OfferOutcome::Busy, "")
        .await
        .expect("repeat");
    assert_eq!(again, OfferResult::Stale(Some(CallState::Offered)));
    assert_eq!(misses(&store, "d2").await, 1);
    // the <Dial> times out: the call is back in line at its rank, d1 and d3 each missed it
    let r = store
        .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("no answer");
    assert!(matches!(r, OfferResult::Requeued(_)), "{r:?}");
    let c = call(&store, "CA1").await;
    assert_eq!(c.state, CallState::Waiting);
    assert!(c.agent.is_none() && c.ringing.is_empty());
    for id in ["d1", "d2", "d3"] {
        assert_eq!(status(&store, id).await, AgentStatus::Wrapup, "{id}");
        assert_eq!(misses(&store, id).await, 1, "{id}");
    }
    assert_invariants(&store, &sids(&["CA1"])).await;
    // the legs' own no-answers arriving after the <Dial> result change nothing
    for id in ["d1", "d3"] {
        let late = store
            .leg_result(&o.offer_ref_for(id), OfferOutcome::NoAnswer, "")
            .await
            .expect("late leg");
        assert_eq!(late, OfferResult::Stale(Some(CallState::Waiting)));
        assert_eq!(misses(&store, id).await, 1, "{id}");
    }
}

#[tokio::test]
async fn the_last_leg_to_end_unanswered_ends_the_offer() {
    let store = floor().await;
    store
        .set_agent_status("d3", RequestedStatus::Paused, "")
        .await
        .expect("paused");
    let o = enter_offered(&store, "CA1", "desk").await;
    assert_eq!(rung(&o), set(&["d1", "d2"]));
    // the leg of the agent the <Dial> action names ends first: the offer goes on with d2
    let r = store
        .leg_result(&o.offer_ref(), OfferOutcome::Canceled, "")
        .await
        .expect("first leg");
    assert_eq!(r, OfferResult::Released(AgentStatus::Available));
    assert_eq!(state(&store, "CA1").await, CallState::Offered);
    assert_invariants(&store, &sids(&["CA1"])).await;
    let other = o.agents()[1].0.clone();
    let r = store
        .leg_result(&o.offer_ref_for(&other), OfferOutcome::NoAnswer, "")
        .await
        .expect("last leg");
    assert!(matches!(r, OfferResult::Requeued(_)), "{r:?}");
    assert_eq!(state(&store, "CA1").await, CallState::Waiting);
    // the <Dial> result, naming the first agent, comes after: nothing more
    let late = store
        .offer_result(&o.offer_ref(), OfferOutcome::NoAnswer, "")
        .await
        .expect("late dial");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Waiting)));
    assert_eq!(misses(&store, &o.agent_id).await, 0, "canceled: no miss");
    assert_eq!(misses(&store, &other).await, 1);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

#[tokio::test]
async fn a_caller_hanging_up_or_an_operator_frees_every_agent_ringing() {
    let store = floor().await;
    let o = enter_offered(&store, "CA1", "desk").await;
    assert_eq!(rung(&o).len(), 3);
    let r = store.abandon("CA1", "call_gone").await.expect("abandon");
    assert_eq!(r, Transition::Done(CallState::Offered));
    for id in ["d1", "d2", "d3"] {
        assert_eq!(status(&store, id).await, AgentStatus::Available, "{id}");
    }
    assert_invariants(&store, &sids(&["CA1"])).await;
    let o = enter_offered(&store, "CA2", "desk").await;
    assert_eq!(rung(&o).len(), 3);
    store.end_call("CA2", "ops").await.expect("end");
    for id in ["d1", "d2", "d3"] {
        assert_eq!(status(&store, id).await, AgentStatus::Available, "{id}");
    }
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn a_dial_that_ends_before_any_answer_reached_callq_frees_every_agent() {
    let store = floor().await;
    let o = enter_offered(&store, "CA1", "desk").await;
    // the conversation happened but its `answered` is late: the <Dial> says completed
    let done = store
        .complete("CA1", Some(&o.offer_ref()), EndSource::Dial)
        .await
        .expect("dial end");
    assert_eq!(done, Completion::Completed(String::new()));
    assert_eq!(state(&store, "CA1").await, CallState::Completed);
    for id in ["d1", "d2", "d3"] {
        assert_eq!(status(&store, id).await, AgentStatus::Available, "{id}");
    }
    let late = store
        .leg_result(&o.offer_ref_for("d2"), OfferOutcome::Answered, "CAleg")
        .await
        .expect("late");
    assert_eq!(late, OfferResult::Stale(Some(CallState::Completed)));
    assert_invariants(&store, &sids(&["CA1"])).await;
    // a leg's own end before any answer names the agent who talked
    let o = enter_offered(&store, "CA2", "desk").await;
    let done = store
        .complete("CA2", Some(&o.offer_ref_for("d1")), EndSource::Leg)
        .await
        .expect("leg end");
    assert_eq!(done, Completion::Completed("d1".into()));
    assert_eq!(agent_rec(&store, "d1").await.handled, 1);
    assert_eq!(agent_rec(&store, "d2").await.handled, 0);
    assert_invariants(&store, &sids(&["CA1", "CA2"])).await;
}

#[tokio::test]
async fn a_check_of_a_ring_all_offer_sees_every_agent_ringing() {
    let store = floor().await;
    let o = claim_leased_after(&store, "CA1").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let checks = store
        .take_checks(5, Duration::from_secs(10))
        .await
        .expect("checks");
    assert_eq!(checks.len(), 1);
    let ringing: BTreeSet<String> = checks[0].ringing.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(ringing, rung(&o));
    assert!(checks[0]
        .ringing
        .iter()
        .all(|(a, identity)| identity == &format!("client-{a}")));
    // Twilio says d3's leg is talking: the check settles under d3's name of the offer
    let r = store
        .offer_result(&o.offer_ref_for("d3"), OfferOutcome::Answered, "CAleg")
        .await
        .expect("answered");
    assert_eq!(r, OfferResult::Connected);
    assert_invariants(&store, &sids(&["CA1"])).await;
}

/// `sid` enters `desk` and is claimed under a lease short enough to pass at once.
async fn claim_leased_after(store: &Store, sid: &str) -> Offer {
    enqueue(store, sid, "desk").await;
    claim_leased(store, Duration::from_millis(5)).await
}

#[tokio::test]
async fn a_callback_under_ring_all_goes_to_one_agent() {
    let store = floor().await;
    enqueue(&store, "CA1", "desk").await;
    store
        .request_callback("CA1", "+15551230000")
        .await
        .expect("callback");
    let o = claim(&store).await.expect("offer");
    assert_eq!(o.kind, CallKind::Callback);
    assert!(o.also.is_empty(), "a callback rings one agent: {o:?}");
    assert_invariants(&store, &sids(&["CA1"])).await;
}
