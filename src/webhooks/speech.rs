//! What callq says to callers, in their queue's language: the fixed phrases of every prompt
//! (English and Spanish), and the `<Say language voice>` they are spoken with. A queue's
//! `language` (a BCP 47 tag such as `en-US` or `es-MX`) picks both; its `voice` is passed on.
//! The spoken numbers (place in line, estimated wait, when a closed queue opens) are worded in
//! [`super::announce`]. Agent-facing words (whispers to an agent) stay English.

use super::Why;
use crate::config::language::Lang;
use crate::config::QueueConfig;
use crate::twilio::twiml::{self, GatherChild, Say, Verb};

/// The phrases of a language.
pub fn phrases(lang: Lang) -> &'static Phrases {
    match lang {
        Lang::En => &EN,
        Lang::Es => &ES,
    }
}

/// One sentence for each reason a caller is sent to an action.
#[derive(Debug)]
pub struct ByWhy {
    pub closed: &'static str,
    pub max_wait: &'static str,
    pub no_agents: &'static str,
    pub no_answer: &'static str,
    pub queue_full: &'static str,
}

impl ByWhy {
    pub fn get(&self, why: Why) -> &'static str {
        match why {
            Why::Closed => self.closed,
            Why::MaxWait => self.max_wait,
            Why::NoAgents => self.no_agents,
            Why::NoAnswer => self.no_answer,
            Why::QueueFull => self.queue_full,
        }
    }
}

/// Every fixed sentence a caller may hear.
#[derive(Debug)]
pub struct Phrases {
    /// The menu heard nothing.
    pub menu_not_caught: &'static str,
    /// The menu got a digit it has no option for.
    pub menu_not_an_option: &'static str,
    /// "We open {when}." (`{}` is [`super::announce::opening_phrase`]).
    pub we_open: &'static str,
    pub closed_withheld: &'static str,
    pub closed_callback_taken: &'static str,
    pub voicemail_thanks: &'static str,
    pub voicemail_empty: &'static str,
    /// Nobody takes calls: no estimate we cannot stand behind.
    pub nobody_staffed: &'static str,
    /// A caller who hung up in line called back within the resume window.
    pub welcome_back: &'static str,
    /// The agent transferred the call; the caller holds for the next agent.
    pub transferring: &'static str,
    pub callback_offer: &'static str,
    pub callback_taken: &'static str,
    pub callback_not_taken: &'static str,
    pub hold_not_an_option: &'static str,
    pub hold_withheld: &'static str,
    pub passed_to_more_agents: &'static str,
    /// An offer went unanswered; the caller is back in line.
    pub still_busy: &'static str,
    pub connecting: &'static str,
    pub goodbye: &'static str,
    pub apology: &'static str,
    pub voicemail_lead: ByWhy,
    pub transfer_lead: ByWhy,
    pub farewell: ByWhy,
}

pub static EN: Phrases = Phrases {
    menu_not_caught: "Sorry, I did not catch that.",
    menu_not_an_option: "Sorry, that is not one of the options.",
    we_open: "We open {}.",
    welcome_back: "Welcome back. You have kept your place in line.",
    transferring: "Please hold while we transfer your call.",
    closed_withheld: "We cannot call back a withheld number.",
    closed_callback_taken:
        "We will call you back at this number as soon as an agent is free. Goodbye.",
    voicemail_thanks: "Thank you for your message. We will call you back. Goodbye.",
    voicemail_empty: "We did not receive a message. Goodbye.",
    nobody_staffed: "All our agents are away at the moment, so we cannot estimate your wait.",
    callback_offer: "To be called back instead, keeping your place in line, press 1 at any time.",
    callback_taken: "Thank you. We will call you back at this number when it is your turn. You keep your place in line.",
    callback_not_taken: "Sorry, we could not take your request right now. Please keep holding.",
    hold_not_an_option: "Sorry, that is not an option. Please keep holding.",
    hold_withheld: "Sorry, we cannot call back a withheld number. Please keep holding.",
    passed_to_more_agents: "Thank you for waiting. We are passing your call to more agents; you keep your place in line.",
    still_busy: "All our agents are still busy. Please hold; you keep your place in line.",
    connecting: "Please hold while we connect your call.",
    goodbye: "Goodbye.",
    apology:
        "We are sorry, we cannot take your call right now. Please call again later. Goodbye.",
    voicemail_lead: ByWhy {
        closed: "Please leave a message after the tone, and we will call you back.",
        max_wait: "We are sorry for the long wait. Please leave a message after the tone, and we will call you back.",
        no_agents: "All our agents are away at the moment. Please leave a message after the tone, and we will call you back.",
        no_answer: "We are sorry, nobody could take your call. Please leave a message after the tone, and we will call you back.",
        queue_full: "All our lines are busy at the moment. Please leave a message after the tone, and we will call you back.",
    },
    transfer_lead: ByWhy {
        closed: "Please hold while we transfer your call.",
        max_wait: "We are sorry for the long wait. Please hold while we transfer your call.",
        no_agents: "All our agents are away at the moment. Please hold while we transfer your call.",
        no_answer: "Please hold while we transfer your call.",
        queue_full: "All our lines are busy at the moment. Please hold while we transfer your call.",
    },
    farewell: ByWhy {
        closed: "Goodbye.",
        max_wait: "We are sorry, all our agents are still busy. Please call again later. Goodbye.",
        no_agents: "We are sorry, all our agents are away at the moment. Please call again later. Goodbye.",
        no_answer: "We are sorry, nobody could take your call. Please call again later. Goodbye.",
        queue_full: "We are sorry, all our lines are busy. Please call again later. Goodbye.",
    },
};

pub static ES: Phrases = Phrases {
    menu_not_caught: "Perdone, no le he entendido.",
    menu_not_an_option: "Perdone, esa no es una de las opciones.",
    we_open: "Abrimos {}.",
    welcome_back: "Bienvenido de nuevo. Conserva su lugar en la cola.",
    transferring: "Por favor, espere mientras transferimos su llamada.",
    closed_withheld: "No podemos devolver la llamada a un número oculto.",
    closed_callback_taken:
        "Le llamaremos a este número en cuanto un agente quede libre. Adiós.",
    voicemail_thanks: "Gracias por su mensaje. Le devolveremos la llamada. Adiós.",
    voicemail_empty: "No hemos recibido ningún mensaje. Adiós.",
    nobody_staffed: "En este momento no hay ningún agente disponible, así que no podemos estimar su espera.",
    callback_offer: "Si prefiere que le llamemos, sin perder su turno, pulse 1 en cualquier momento.",
    callback_taken: "Gracias. Le llamaremos a este número cuando llegue su turno. Conserva su turno.",
    callback_not_taken: "Lo sentimos, ahora no hemos podido registrar su petición. Por favor, siga a la espera.",
    hold_not_an_option: "Perdone, esa no es una opción. Por favor, siga a la espera.",
    hold_withheld: "Lo sentimos, no podemos llamar a un número oculto. Por favor, siga a la espera.",
    passed_to_more_agents: "Gracias por esperar. Pasamos su llamada a más agentes; conserva su turno.",
    still_busy: "Todos nuestros agentes siguen ocupados. Por favor, espere; conserva su turno.",
    connecting: "Por favor, espere mientras le pasamos la llamada.",
    goodbye: "Adiós.",
    apology: "Lo sentimos, ahora no podemos atender su llamada. Por favor, vuelva a llamar más tarde. Adiós.",
    voicemail_lead: ByWhy {
        closed: "Deje su mensaje después de la señal y le devolveremos la llamada.",
        max_wait: "Sentimos la larga espera. Deje su mensaje después de la señal y le devolveremos la llamada.",
        no_agents: "En este momento no hay ningún agente disponible. Deje su mensaje después de la señal y le devolveremos la llamada.",
        no_answer: "Lo sentimos, nadie ha podido atender su llamada. Deje su mensaje después de la señal y le devolveremos la llamada.",
        queue_full: "Todas nuestras líneas están ocupadas. Deje su mensaje después de la señal y le devolveremos la llamada.",
    },
    transfer_lead: ByWhy {
        closed: "Por favor, espere mientras transferimos su llamada.",
        max_wait: "Sentimos la larga espera. Por favor, espere mientras transferimos su llamada.",
        no_agents: "En este momento no hay ningún agente disponible. Por favor, espere mientras transferimos su llamada.",
        no_answer: "Por favor, espere mientras transferimos su llamada.",
        queue_full: "Todas nuestras líneas están ocupadas. Por favor, espere mientras transferimos su llamada.",
    },
    farewell: ByWhy {
        closed: "Adiós.",
        max_wait: "Lo sentimos, todos nuestros agentes siguen ocupados. Por favor, vuelva a llamar más tarde. Adiós.",
        no_agents: "Lo sentimos, en este momento no hay ningún agente disponible. Por favor, vuelva a llamar más tarde. Adiós.",
        no_answer: "Lo sentimos, nadie ha podido atender su llamada. Por favor, vuelva a llamar más tarde. Adiós.",
        queue_full: "Lo sentimos, todas nuestras líneas están ocupadas. Por favor, vuelva a llamar más tarde. Adiós.",
    },
};

/// How one queue's callers are spoken to: its phrases, and the `<Say>` language and voice.
#[derive(Debug, Clone)]
pub struct Speech {
    pub lang: Lang,
    /// The `<Say language>` (the queue's tag as configured; none: Twilio's default).
    pub language: Option<String>,
    pub voice: Option<String>,
}

impl Default for Speech {
    fn default() -> Self {
        Speech {
            lang: Lang::En,
            language: None,
            voice: None,
        }
    }
}

impl Speech {
    /// A tag and voice as configured (checked at start; an unknown language falls back to
    /// English words, still said with the configured tag).
    pub fn new(language: Option<&str>, voice: Option<&str>) -> Self {
        let language = language.map(str::trim).filter(|l| !l.is_empty());
        Speech {
            lang: language.and_then(Lang::of).unwrap_or(Lang::En),
            language: language.map(str::to_owned),
            voice: voice.map(str::to_owned),
        }
    }

    pub fn of_queue(cfg: &QueueConfig) -> Self {
        Speech::new(cfg.language.as_deref(), cfg.voice.as_deref())
    }

    pub fn phrases(&self) -> &'static Phrases {
        phrases(self.lang)
    }

    /// `doc` with every `<Say>` (in a `<Gather>` too) given this language and voice, where
    /// it has none of its own.
    pub fn spoken(&self, mut doc: twiml::Response) -> twiml::Response {
        for verb in &mut doc.verbs {
            match verb {
                Verb::Say(say) => self.dress(say),
                Verb::Gather(g) => {
                    for child in &mut g.children {
                        if let GatherChild::Say(say) = child {
                            self.dress(say);
                        }
                    }
                }
                _ => {}
            }
        }
        doc
    }

    fn dress(&self, say: &mut Say) {
        if say.language.is_none() {
            say.language.clone_from(&self.language);
        }
        if say.voice.is_none() {
            say.voice.clone_from(&self.voice);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_words_in_both_languages() {
        for why in [
            Why::Closed,
            Why::MaxWait,
            Why::NoAgents,
            Why::NoAnswer,
            Why::QueueFull,
        ] {
            for p in [&EN, &ES] {
                assert!(!p.voicemail_lead.get(why).is_empty());
                assert!(!p.transfer_lead.get(why).is_empty());
                assert!(!p.farewell.get(why).is_empty());
            }
            assert_ne!(EN.farewell.get(why), ES.farewell.get(why));
        }
        assert!(EN.we_open.contains("{}") && ES.we_open.contains("{}"));
    }

    #[test]
    fn every_say_is_dressed_in_the_language_and_voice_unless_it_has_its_own() {
        let speech = Speech::new(Some("es-ES"), Some("Polly.Lucia"));
        let own = Say {
            text: "own".into(),
            language: Some("en-GB".into()),
            ..Say::default()
        };
        let doc = twiml::Response::new()
            .say("hola")
            .verb(own)
            .verb(twiml::Gather {
                children: vec![GatherChild::Say(Say::new("pulse 1"))],
                ..twiml::Gather::default()
            });
        let doc = speech.spoken(doc);
        let says: Vec<&Say> = doc
            .verbs
            .iter()
            .flat_map(|v| match v {
                Verb::Say(s) => vec![s],
                Verb::Gather(g) => g
                    .children
                    .iter()
                    .filter_map(|c| match c {
                        GatherChild::Say(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            })
            .collect();
        assert_eq!(says.len(), 3);
        assert_eq!(says[0].language.as_deref(), Some("es-ES"));
        assert_eq!(says[0].voice.as_deref(), Some("Polly.Lucia"));
        assert_eq!(says[1].language.as_deref(), Some("en-GB"), "its own kept");
        assert_eq!(says[2].language.as_deref(), Some("es-ES"));
    }
}
