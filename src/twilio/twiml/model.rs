//! The TwiML model: [`Response`] and the verbs and nouns under it, how they are built, and
//! [`Response::validate`], what Twilio would refuse beyond XML syntax. The same types are
//! written by `write` and read back by `parse`.

/// The largest TwiML document Twilio accepts (larger ones fail with error 11750).
pub const MAX_TWIML_BYTES: usize = 64 * 1024;
/// The longest inline `Twiml` parameter the REST API accepts, in characters (error 32018).
pub const MAX_INLINE_TWIML_CHARS: usize = 4_000;
/// The longest `<Enqueue>` queue name Twilio accepts, in characters.
pub const MAX_QUEUE_NAME_CHARS: usize = 64;
/// The largest `maxQueueSize` Twilio accepts (its default is 1000).
pub const MAX_QUEUE_SIZE: u32 = 5_000;

/// A TwiML document: `<Response>` and its verbs, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub verbs: Vec<Verb>,
}

/// A verb directly under `<Response>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Say(Say),
    Play(Play),
    /// `<Pause length>`, in seconds (Twilio's default, when absent, is 1).
    Pause {
        length: u32,
    },
    Enqueue(Enqueue),
    Dial(Dial),
    Gather(Gather),
    /// `<Redirect method>url</Redirect>`.
    Redirect {
        url: String,
        method: Option<String>,
    },
    Leave,
    Hangup,
    Record(Record),
    Reject,
}

/// `<Say voice language loop>text</Say>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Say {
    pub text: String,
    pub voice: Option<String>,
    pub language: Option<String>,
    /// `loop`: how many times to say it; 0 repeats until the call moves on.
    pub loop_: Option<u32>,
}

/// `<Play loop>url</Play>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Play {
    pub url: String,
    pub loop_: Option<u32>,
}

/// `<Enqueue action method waitUrl waitUrlMethod maxQueueSize>name</Enqueue>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enqueue {
    /// The queue's name, 1 to [`MAX_QUEUE_NAME_CHARS`] characters.
    pub name: String,
    pub action: Option<String>,
    pub method: Option<String>,
    pub wait_url: Option<String>,
    pub wait_url_method: Option<String>,
    /// 1 to [`MAX_QUEUE_SIZE`].
    pub max_queue_size: Option<u32>,
}

/// `<Dial action method timeout answerOnBridge callerId timeLimit record
/// recordingStatusCallback recordingStatusCallbackMethod recordingStatusCallbackEvent>` and its
/// nouns (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dial {
    pub action: Option<String>,
    pub method: Option<String>,
    /// Seconds to ring (Twilio's default 30).
    pub timeout: Option<u32>,
    pub answer_on_bridge: Option<bool>,
    pub caller_id: Option<String>,
    /// Seconds the call may last.
    pub time_limit: Option<u32>,
    /// Twilio's recording mode: `do-not-record`, `record-from-answer`, `record-from-ringing`,
    /// `record-from-answer-dual` or `record-from-ringing-dual` (kept as written).
    pub record: Option<String>,
    /// Where Twilio POSTs the recording's status (`RecordingSid`, `RecordingUrl`, …).
    pub recording_status_callback: Option<String>,
    pub recording_status_callback_method: Option<String>,
    /// Space-separated events: `in-progress`, `completed`, `absent` (Twilio's default
    /// `completed`).
    pub recording_status_callback_event: Option<String>,
    pub nouns: Vec<DialNoun>,
}

/// What `<Dial>` connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialNoun {
    Client(Client),
    Number(Number),
    /// `<Queue>name</Queue>`: bridge to the call at the head of a Twilio queue.
    Queue {
        name: String,
    },
}

/// `<Client statusCallback statusCallbackEvent statusCallbackMethod>` with
/// `<Identity>…</Identity>` and `<Parameter name value/>` children. A bare
/// `<Client>identity</Client>` is read as well.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Client {
    pub identity: String,
    pub status_callback: Option<String>,
    /// Space-separated events, e.g. `"answered completed"`.
    pub status_callback_event: Option<String>,
    pub status_callback_method: Option<String>,
    /// Custom parameters passed to the agent's Voice SDK, in order.
    pub parameters: Vec<(String, String)>,
}

/// `<Number statusCallback statusCallbackEvent>number</Number>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Number {
    pub number: String,
    pub status_callback: Option<String>,
    pub status_callback_event: Option<String>,
}

/// `<Gather input numDigits action method timeout finishOnKey>` with nested prompts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gather {
    /// `dtmf`, `speech` or `dtmf speech`.
    pub input: Option<String>,
    pub num_digits: Option<u32>,
    pub action: Option<String>,
    pub method: Option<String>,
    pub timeout: Option<u32>,
    /// `Some("")` disables the finish key.
    pub finish_on_key: Option<String>,
    pub children: Vec<GatherChild>,
}

/// What `<Gather>` may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatherChild {
    Say(Say),
    Play(Play),
    Pause { length: u32 },
}

/// `<Record action maxLength playBeep transcribe finishOnKey/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub action: Option<String>,
    /// Seconds.
    pub max_length: Option<u32>,
    pub play_beep: Option<bool>,
    pub transcribe: Option<bool>,
    pub finish_on_key: Option<String>,
}

/// Why a TwiML document cannot be read, or would be refused by Twilio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwimlError {
    #[error("TwiML document is {bytes} bytes; Twilio accepts at most {max} (error 11750)")]
    TooLarge { bytes: usize, max: usize },
    #[error(
        "inline TwiML is {chars} characters; Twilio's REST API accepts at most {max} (error 32018)"
    )]
    InlineTooLong { chars: usize, max: usize },
    #[error("malformed XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("no <Response> element")]
    MissingRoot,
    #[error("the root element must be <Response>, found <{found}>")]
    WrongRoot { found: String },
    #[error("unknown or unsupported element <{element}> inside <{parent}>")]
    UnknownElement { parent: String, element: String },
    #[error("<{element}> is not allowed inside <{parent}>")]
    NotAllowed { parent: String, element: String },
    #[error("more than one <{element}> inside <{parent}>")]
    Duplicate { parent: String, element: String },
    #[error("<{element}> {attribute}=\"{value}\": expected {expected}")]
    InvalidAttribute {
        element: String,
        attribute: String,
        value: String,
        expected: &'static str,
    },
    #[error("<{element}> is missing its {what}")]
    Missing { element: String, what: &'static str },
    #[error("<{element}> {what} is {len} characters; Twilio accepts at most {max}")]
    TooLong {
        element: String,
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("unexpected text {text:?} inside <{element}>")]
    UnexpectedText { element: String, text: String },
    #[error("<{element}> is not closed")]
    Unclosed { element: String },
    #[error("content after </Response>")]
    TrailingContent,
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

impl Response {
    /// An empty `<Response/>` (Twilio hangs up after it).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends any verb: `Response::new().verb(Say::new("Hello")).verb(Enqueue::new("support"))`.
    pub fn verb(mut self, verb: impl Into<Verb>) -> Self {
        self.verbs.push(verb.into());
        self
    }

    /// Appends `<Say>text</Say>`.
    pub fn say(self, text: impl Into<String>) -> Self {
        self.verb(Say::new(text))
    }

    /// Appends `<Play>url</Play>`.
    pub fn play(self, url: impl Into<String>) -> Self {
        self.verb(Play::new(url))
    }

    /// Appends `<Pause length="…"/>`.
    pub fn pause(self, length: u32) -> Self {
        self.verb(Verb::Pause { length })
    }

    /// Appends `<Redirect>url</Redirect>` (POST, Twilio's default).
    pub fn redirect(self, url: impl Into<String>) -> Self {
        self.verb(Verb::Redirect {
            url: url.into(),
            method: None,
        })
    }

    /// Appends `<Leave/>`.
    pub fn leave(self) -> Self {
        self.verb(Verb::Leave)
    }

    /// Appends `<Hangup/>`.
    pub fn hangup(self) -> Self {
        self.verb(Verb::Hangup)
    }

    /// Appends `<Reject/>`.
    pub fn reject(self) -> Self {
        self.verb(Verb::Reject)
    }
}

impl Say {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

impl Play {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Enqueue {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl Client {
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            ..Self::default()
        }
    }
}

impl Number {
    pub fn new(number: impl Into<String>) -> Self {
        Self {
            number: number.into(),
            ..Self::default()
        }
    }
}

macro_rules! into_verb {
    ($($ty:ident),*) => {$(
        impl From<$ty> for Verb {
            fn from(value: $ty) -> Self {
                Verb::$ty(value)
            }
        }
    )*};
}
into_verb!(Say, Play, Enqueue, Dial, Gather, Record);

impl From<Say> for GatherChild {
    fn from(value: Say) -> Self {
        GatherChild::Say(value)
    }
}

impl From<Play> for GatherChild {
    fn from(value: Play) -> Self {
        GatherChild::Play(value)
    }
}

impl From<Client> for DialNoun {
    fn from(value: Client) -> Self {
        DialNoun::Client(value)
    }
}

impl From<Number> for DialNoun {
    fn from(value: Number) -> Self {
        DialNoun::Number(value)
    }
}

// ---------------------------------------------------------------------------------------------
// Checking what Twilio would refuse
// ---------------------------------------------------------------------------------------------

impl Response {
    /// Checks what Twilio would refuse beyond XML syntax: required content (queue name, redirect
    /// URL, a noun in every `<Dial>`, client identity, parameter names), queue name length and
    /// queue size. [`parse`](fn@super::parse) applies it; [`Response::to_xml_checked`] too.
    pub fn validate(&self) -> Result<(), TwimlError> {
        self.verbs.iter().try_for_each(Verb::validate)
    }
}

impl Verb {
    fn validate(&self) -> Result<(), TwimlError> {
        match self {
            Verb::Enqueue(enqueue) => {
                let len = enqueue.name.chars().count();
                if enqueue.name.is_empty() {
                    return Err(missing("Enqueue", "queue name"));
                }
                if len > MAX_QUEUE_NAME_CHARS {
                    return Err(TwimlError::TooLong {
                        element: "Enqueue".to_owned(),
                        what: "queue name",
                        len,
                        max: MAX_QUEUE_NAME_CHARS,
                    });
                }
                match enqueue.max_queue_size {
                    Some(size) if !(1..=MAX_QUEUE_SIZE).contains(&size) => {
                        Err(TwimlError::InvalidAttribute {
                            element: "Enqueue".to_owned(),
                            attribute: "maxQueueSize".to_owned(),
                            value: size.to_string(),
                            expected: "an integer from 1 to 5000",
                        })
                    }
                    _ => Ok(()),
                }
            }
            Verb::Redirect { url, .. } if url.is_empty() => Err(missing("Redirect", "URL")),
            Verb::Dial(dial) => {
                if dial.nouns.is_empty() {
                    return Err(missing("Dial", "<Client>, <Number> or <Queue>"));
                }
                dial.nouns.iter().try_for_each(|noun| match noun {
                    DialNoun::Client(client) if client.identity.is_empty() => {
                        Err(missing("Client", "identity"))
                    }
                    DialNoun::Client(client) => {
                        if client.parameters.iter().any(|(name, _)| name.is_empty()) {
                            Err(missing("Parameter", "name"))
                        } else {
                            Ok(())
                        }
                    }
                    DialNoun::Number(number) if number.number.is_empty() => {
                        Err(missing("Number", "number"))
                    }
                    DialNoun::Queue { name } if name.is_empty() => {
                        Err(missing("Queue", "queue name"))
                    }
                    _ => Ok(()),
                })
            }
            _ => Ok(()),
        }
    }
}

fn missing(element: &str, what: &'static str) -> TwimlError {
    TwimlError::Missing {
        element: element.to_owned(),
        what,
    }
}
