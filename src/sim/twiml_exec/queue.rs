//! `<Enqueue>`: Twilio's queues as the simulator keeps them ([`TwilioQueues`]), and the
//! interpreter while its caller is in one: the waitUrl requested each time its document ends,
//! then the Enqueue action with the `QueueResult`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::time::Instant;

use super::{Control, Env, Flow, Interpreter, Observed};
use crate::twilio::twiml::{Enqueue, Response};

/// Shortest time between two requests of the waitUrl (a document that takes no time would
/// otherwise be requested in a tight loop).
const MIN_WAIT_DOC: Duration = Duration::from_millis(500);

/// Twilio's view of its `<Enqueue>` queues: members in arrival order, for the waitUrl
/// parameters (`QueuePosition`, `CurrentQueueSize`, `AvgQueueTime`).
#[derive(Debug, Default)]
pub struct TwilioQueues {
    inner: Mutex<HashMap<String, QueueBook>>,
}

#[derive(Debug, Default)]
struct QueueBook {
    members: VecDeque<(String, Instant)>,
    left: u64,
    total_wait_s: f64,
}

/// A member's view of its queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueView {
    pub position: usize,
    pub size: usize,
    pub avg_wait_s: u64,
}

impl TwilioQueues {
    /// The QueueSid Twilio would give the queue named `name` (stable per name).
    pub fn sid_for(name: &str) -> String {
        let digest = Sha1::digest(name.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("QU{}", &hex[..32])
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, QueueBook>) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn join(&self, name: &str, sid: &str) {
        self.with(|m| {
            m.entry(name.to_string())
                .or_default()
                .members
                .push_back((sid.to_string(), Instant::now()))
        });
    }

    pub fn leave(&self, name: &str, sid: &str) {
        self.with(|m| {
            if let Some(q) = m.get_mut(name) {
                if let Some(i) = q.members.iter().position(|(s, _)| s == sid) {
                    if let Some((_, t)) = q.members.remove(i) {
                        q.left += 1;
                        q.total_wait_s += t.elapsed().as_secs_f64();
                    }
                }
            }
        });
    }

    pub fn view(&self, name: &str, sid: &str) -> QueueView {
        self.with(|m| match m.get(name) {
            Some(q) => QueueView {
                position: q
                    .members
                    .iter()
                    .position(|(s, _)| s == sid)
                    .map(|i| i + 1)
                    .unwrap_or(0),
                size: q.members.len(),
                avg_wait_s: if q.left == 0 {
                    0
                } else {
                    (q.total_wait_s / q.left as f64).round() as u64
                },
            },
            None => QueueView {
                position: 0,
                size: 0,
                avg_wait_s: 0,
            },
        })
    }

    /// Every queue Twilio has made (named by `<Enqueue>`), sorted by name, with its members
    /// first in line first: (CallSid, time in the queue).
    pub fn members(&self) -> Vec<(String, Vec<(String, Duration)>)> {
        let mut all: Vec<(String, Vec<(String, Duration)>)> = self.with(|m| {
            m.iter()
                .map(|(name, q)| {
                    let members = q
                        .members
                        .iter()
                        .map(|(sid, t)| (sid.clone(), t.elapsed()))
                        .collect();
                    (name.clone(), members)
                })
                .collect()
        });
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Members of every queue.
    pub fn total(&self) -> usize {
        self.with(|m| m.values().map(|q| q.members.len()).sum())
    }
}

impl<E: Env> Interpreter<E> {
    pub(super) async fn enqueue(&mut self, e: Enqueue) -> Flow {
        let queue_sid = TwilioQueues::sid_for(&e.name);
        let joined = Instant::now();
        self.env.queues().join(&e.name, &self.call.sid);
        let wait_url = e.wait_url.as_deref().map(|u| self.resolve(u));
        let action = e.action.as_deref().map(|u| self.resolve(u));
        let mut first = true;
        let (result, flow) = loop {
            let started = Instant::now();
            // a key pressed in the previous wait document that did not end in a <Leave/> was
            // not taken: the caller is still holding, and may press again
            self.log.callback_pressed = false;
            let doc = match &wait_url {
                Some(url) => {
                    let v = self.env.queues().view(&e.name, &self.call.sid);
                    let params = vec![
                        ("QueueSid".to_string(), queue_sid.clone()),
                        ("QueuePosition".to_string(), v.position.to_string()),
                        (
                            "QueueTime".to_string(),
                            joined.elapsed().as_secs().to_string(),
                        ),
                        ("AvgQueueTime".to_string(), v.avg_wait_s.to_string()),
                        ("CurrentQueueSize".to_string(), v.size.to_string()),
                        (
                            "MaxQueueSize".to_string(),
                            e.max_queue_size.unwrap_or(1000).to_string(),
                        ),
                    ];
                    match self.fetch(url, params).await {
                        Ok(doc) => doc,
                        Err(err) => {
                            // Twilio plays its default hold music when the waitUrl fails
                            self.log.errors.push(err);
                            Response::new().pause(5)
                        }
                    }
                }
                None => Response::new().pause(30),
            };
            if first {
                first = false;
                self.env.observe(
                    &self.call,
                    Observed::Announced {
                        queue: e.name.clone(),
                    },
                );
            }
            match self.exec_wait(doc).await {
                Flow::End | Flow::Goto(..) => {
                    let spent = started.elapsed();
                    if spent < MIN_WAIT_DOC {
                        if let Some(f) = self.pause(MIN_WAIT_DOC - spent).await {
                            break self.queue_exit(f);
                        }
                    }
                }
                f => break self.queue_exit(f),
            }
        };
        self.env.queues().leave(&e.name, &self.call.sid);
        self.log.queue_results.push(result.to_string());
        let params = vec![
            ("QueueResult".to_string(), result.to_string()),
            ("QueueSid".to_string(), queue_sid),
            (
                "QueueTime".to_string(),
                joined.elapsed().as_secs().to_string(),
            ),
        ];
        match (result, action) {
            ("leave", Some(action)) => Flow::Goto(action, params),
            ("leave", None) => Flow::End,
            (_, Some(action)) => {
                let mut p = self.call.params("in-progress");
                p.extend(params);
                self.env.notify(&action, p);
                flow
            }
            (_, None) => flow,
        }
    }

    /// The `QueueResult` for how the caller left the queue.
    fn queue_exit(&self, f: Flow) -> (&'static str, Flow) {
        let result = match &f {
            Flow::Leave => "leave",
            Flow::Control(Control::Twiml(_) | Control::Url(_)) => "redirected",
            _ => "hangup",
        };
        (result, f)
    }
}
