//! `<Gather>` (the caller presses the digit they were told to, or nothing) and `<Record>` (a
//! voicemail message, then the caller hangs up).

use super::{secs, times, Env, Flow, Interpreter};
use crate::twilio::twiml::{Gather, GatherChild, Record};

impl<E: Env> Interpreter<E> {
    pub(super) async fn gather(&mut self, g: Gather, in_queue: bool) -> Flow {
        // what this caller would press here: the menu choice, or the callback offer's digit
        let wants = if in_queue {
            self.script.wants_callback && !self.log.callback_pressed
        } else {
            self.script.menu_digit.is_some()
        };
        let mut prompt = String::new();
        let mut digits = None;
        for child in g.children {
            let d = match &child {
                GatherChild::Say(s) => {
                    prompt.push_str(&s.text);
                    prompt.push(' ');
                    self.env.speech(&s.text).saturating_mul(times(s.loop_))
                }
                GatherChild::Play(p) => self.env.media(&p.url).saturating_mul(times(p.loop_)),
                GatherChild::Pause { length } => self.env.pace(secs(*length)),
            };
            if let Some(f) = self.pause(d).await {
                return f;
            }
            // a caller who knows what to press presses once they have heard which key
            if wants && matches!(child, GatherChild::Say(_)) {
                if let Some(key) = offered_digit(&prompt) {
                    digits = Some(if in_queue {
                        key.to_string()
                    } else {
                        self.script.menu_digit.clone().unwrap_or_default()
                    });
                    break;
                }
            }
        }
        if wants && digits.is_none() {
            // the prompt never named a key: the usual one
            digits = Some(if in_queue {
                "1".to_string()
            } else {
                self.script.menu_digit.clone().unwrap_or_default()
            });
        }
        match digits {
            Some(d) => {
                if in_queue {
                    self.log.callback_pressed = true;
                }
                self.log.pressed.push(d.clone());
                let url = g.action.unwrap_or_else(|| self.doc_url.clone());
                Flow::Goto(
                    url,
                    vec![
                        ("Digits".to_string(), d),
                        ("FinishedOnKey".to_string(), String::new()),
                    ],
                )
            }
            None => match self
                .pause(self.env.pace(secs(g.timeout.unwrap_or(5))))
                .await
            {
                Some(f) => f,
                None => Flow::End,
            },
        }
    }

    pub(super) async fn record(&mut self, r: Record) -> Flow {
        self.log.voicemail = true;
        let mut d = self.script.message;
        if let Some(max) = r.max_length {
            d = d.min(self.env.pace(secs(max)));
        }
        if let Some(f) = self.pause(d).await {
            return f;
        }
        if let Some(action) = r.action {
            let url = self.resolve(&action);
            let mut p = self.call.params("completed");
            p.extend([
                (
                    "RecordingSid".to_string(),
                    self.env.new_sid().replacen("CA", "RE", 1),
                ),
                (
                    "RecordingUrl".to_string(),
                    "https://api.twilio.com/recording".to_string(),
                ),
                ("RecordingDuration".to_string(), d.as_secs().to_string()),
            ]);
            self.env.notify(&url, p);
        }
        self.log.caller_hung_up = true;
        Flow::Hangup
    }
}

/// The digit a prompt offers ("… press 1 …"), if it names one.
pub(super) fn offered_digit(prompt: &str) -> Option<char> {
    let lower = prompt.to_ascii_lowercase();
    let i = lower.find("press")?;
    lower[i..].chars().find(|c| c.is_ascii_digit())
}
