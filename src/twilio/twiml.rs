//! TwiML, the XML callq answers Twilio's voice webhooks with: ONE model ([`Response`], [`Verb`]
//! and the structs under them) that callq's handlers write ([`Response::to_xml`]) and that callq's
//! Twilio simulator and tests read back ([`parse`]), so what is written and what is read can never
//! drift apart. `parse(&r.to_xml()) == Ok(r)` for every valid response.
//!
//! Writing uses quick-xml's `Writer`, compact (no indentation), with the XML declaration. Text
//! and attribute values are escaped (`& < > " '`, and in attributes tab/newline/CR as character
//! references so that conforming XML parsers keep them); characters XML 1.0 cannot carry at all
//! (most C0 controls, U+FFFE, U+FFFF) are dropped, since callers control some of that text (names
//! read back to them) and Twilio rejects the whole document otherwise.
//!
//! Reading is strict where Twilio is: the root must be `<Response>`, only the verbs below exist,
//! nesting follows Twilio's rules (`<Gather>` holds only `<Say>`, `<Play>`, `<Pause>`; `<Dial>`
//! only `<Client>`, `<Number>`, `<Queue>` or a bare number), numbers and booleans must parse,
//! required content must be present, documents over [`MAX_TWIML_BYTES`] are refused (Twilio's
//! error 11750). Like Twilio, it ignores attributes it does not know (Twilio only warns), and
//! trims surrounding whitespace from element text (queue names, URLs, numbers, speech).
//! Errors name the element and, where relevant, the attribute. Nothing panics on any input.

use std::borrow::Cow;
use std::io;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::{Reader, Writer};

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

/// `<Dial action method timeout answerOnBridge callerId timeLimit>` and its nouns (at least one).
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
    /// queue size. [`parse`] applies it; [`Response::to_xml_checked`] too.
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

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

impl Response {
    /// The document, with its XML declaration, compact. Writes whatever the model holds; use
    /// [`Response::to_xml_checked`] where Twilio's limits must be met.
    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new(Vec::with_capacity(256));
        self.write(&mut writer)
            .expect("writing to a Vec<u8> cannot fail");
        // Only `&str` content and ASCII markup were written, and escaping keeps UTF-8 intact.
        String::from_utf8(writer.into_inner()).expect("TwiML written from &str is UTF-8")
    }

    /// [`Response::to_xml`], refused when Twilio would refuse it: content [`Response::validate`]
    /// rejects, or a document over [`MAX_TWIML_BYTES`] (error 11750).
    pub fn to_xml_checked(&self) -> Result<String, TwimlError> {
        self.validate()?;
        let xml = self.to_xml();
        if xml.len() > MAX_TWIML_BYTES {
            return Err(TwimlError::TooLarge {
                bytes: xml.len(),
                max: MAX_TWIML_BYTES,
            });
        }
        Ok(xml)
    }

    /// [`Response::to_xml_checked`] for the REST API's inline `Twiml` parameter, which also
    /// refuses more than [`MAX_INLINE_TWIML_CHARS`] characters (error 32018).
    pub fn to_inline_xml(&self) -> Result<String, TwimlError> {
        let xml = self.to_xml_checked()?;
        let chars = xml.chars().count();
        if chars > MAX_INLINE_TWIML_CHARS {
            return Err(TwimlError::InlineTooLong {
                chars,
                max: MAX_INLINE_TWIML_CHARS,
            });
        }
        Ok(xml)
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let response = El::new("Response");
        if self.verbs.is_empty() {
            return response.empty(w);
        }
        response.children(w, |w| self.verbs.iter().try_for_each(|verb| verb.write(w)))
    }
}

impl Verb {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        match self {
            Verb::Say(say) => say.write(w),
            Verb::Play(play) => play.write(w),
            Verb::Pause { length } => write_pause(w, *length),
            Verb::Enqueue(e) => El::new("Enqueue")
                .attr("action", e.action.as_deref())
                .attr("method", e.method.as_deref())
                .attr("waitUrl", e.wait_url.as_deref())
                .attr("waitUrlMethod", e.wait_url_method.as_deref())
                .num("maxQueueSize", e.max_queue_size)
                .text(w, &e.name),
            Verb::Dial(d) => El::new("Dial")
                .attr("action", d.action.as_deref())
                .attr("method", d.method.as_deref())
                .num("timeout", d.timeout)
                .flag("answerOnBridge", d.answer_on_bridge)
                .attr("callerId", d.caller_id.as_deref())
                .num("timeLimit", d.time_limit)
                .children(w, |w| d.nouns.iter().try_for_each(|noun| noun.write(w))),
            Verb::Gather(g) => {
                let gather = El::new("Gather")
                    .attr("input", g.input.as_deref())
                    .num("numDigits", g.num_digits)
                    .attr("action", g.action.as_deref())
                    .attr("method", g.method.as_deref())
                    .num("timeout", g.timeout)
                    .attr("finishOnKey", g.finish_on_key.as_deref());
                if g.children.is_empty() {
                    return gather.empty(w);
                }
                gather.children(w, |w| {
                    g.children.iter().try_for_each(|child| match child {
                        GatherChild::Say(say) => say.write(w),
                        GatherChild::Play(play) => play.write(w),
                        GatherChild::Pause { length } => write_pause(w, *length),
                    })
                })
            }
            Verb::Redirect { url, method } => El::new("Redirect")
                .attr("method", method.as_deref())
                .text(w, url),
            Verb::Leave => El::new("Leave").empty(w),
            Verb::Hangup => El::new("Hangup").empty(w),
            Verb::Record(r) => El::new("Record")
                .attr("action", r.action.as_deref())
                .num("maxLength", r.max_length)
                .flag("playBeep", r.play_beep)
                .flag("transcribe", r.transcribe)
                .attr("finishOnKey", r.finish_on_key.as_deref())
                .empty(w),
            Verb::Reject => El::new("Reject").empty(w),
        }
    }
}

impl Say {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        El::new("Say")
            .attr("voice", self.voice.as_deref())
            .attr("language", self.language.as_deref())
            .num("loop", self.loop_)
            .text(w, &self.text)
    }
}

impl Play {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        El::new("Play").num("loop", self.loop_).text(w, &self.url)
    }
}

fn write_pause(w: &mut Writer<Vec<u8>>, length: u32) -> io::Result<()> {
    El::new("Pause").num("length", Some(length)).empty(w)
}

impl DialNoun {
    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        match self {
            DialNoun::Client(c) => El::new("Client")
                .attr("statusCallback", c.status_callback.as_deref())
                .attr("statusCallbackEvent", c.status_callback_event.as_deref())
                .attr("statusCallbackMethod", c.status_callback_method.as_deref())
                .children(w, |w| {
                    El::new("Identity").text(w, &c.identity)?;
                    c.parameters.iter().try_for_each(|(name, value)| {
                        El::new("Parameter")
                            .attr("name", Some(name))
                            .attr("value", Some(value))
                            .empty(w)
                    })
                }),
            DialNoun::Number(n) => El::new("Number")
                .attr("statusCallback", n.status_callback.as_deref())
                .attr("statusCallbackEvent", n.status_callback_event.as_deref())
                .text(w, &n.number),
            DialNoun::Queue { name } => El::new("Queue").text(w, name),
        }
    }
}

/// An element being written: its name and start tag with attributes.
struct El {
    name: &'static str,
    start: BytesStart<'static>,
}

impl El {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            start: BytesStart::new(name),
        }
    }

    /// Adds `key="value"` when the value is set.
    fn attr(mut self, key: &'static str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.start.push_attribute(Attribute {
                key: QName(key.as_bytes()),
                value: Cow::Owned(escape(value, true).into_bytes()),
            });
        }
        self
    }

    fn num(self, key: &'static str, value: Option<u32>) -> Self {
        self.attr(key, value.map(|n| n.to_string()).as_deref())
    }

    fn flag(self, key: &'static str, value: Option<bool>) -> Self {
        self.attr(key, value.map(|b| if b { "true" } else { "false" }))
    }

    fn empty(self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        w.write_event(Event::Empty(self.start))
    }

    fn text(self, w: &mut Writer<Vec<u8>>, text: &str) -> io::Result<()> {
        self.children(w, |w| {
            if text.is_empty() {
                return Ok(());
            }
            w.write_event(Event::Text(BytesText::from_escaped(escape(text, false))))
        })
    }

    fn children(
        self,
        w: &mut Writer<Vec<u8>>,
        inner: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>,
    ) -> io::Result<()> {
        w.write_event(Event::Start(self.start))?;
        inner(w)?;
        w.write_event(Event::End(BytesEnd::new(self.name)))
    }
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes text (`attribute == false`) or a double-quoted attribute value. CR is always a
/// character reference (parsers turn a literal one into LF); in attributes tab and LF are too
/// (parsers turn literal ones into spaces). Characters XML cannot carry are dropped.
fn escape(raw: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            c if !is_xml_char(c) => {}
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads a TwiML document (see the module documentation for what is refused).
pub fn parse(xml: &str) -> Result<Response, TwimlError> {
    if xml.len() > MAX_TWIML_BYTES {
        return Err(TwimlError::TooLarge {
            bytes: xml.len(),
            max: MAX_TWIML_BYTES,
        });
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut parser = Parser::new(xml);

    // Prolog: declaration, comments, whitespace, then <Response>.
    loop {
        match parser.next()? {
            Node::Text(text) if is_blank(&text) => {}
            Node::Text(_) => return Err(parser.syntax("text before <Response>")),
            Node::Start { name, .. } if name == "Response" => break,
            Node::Start { name, .. } => return Err(TwimlError::WrongRoot { found: name }),
            Node::End(name) => return Err(parser.syntax(format!("unexpected </{name}>"))),
            Node::Eof => return Err(TwimlError::MissingRoot),
        }
    }

    let mut verbs = Vec::new();
    parser.children("Response", |p, child| match child {
        Child::Text(text) => Err(unexpected_text("Response", &text)),
        Child::Element { name, attrs } => {
            verbs.push(p.verb(name, attrs)?);
            Ok(())
        }
    })?;

    // Epilog: only comments and whitespace.
    loop {
        match parser.next()? {
            Node::Text(text) if is_blank(&text) => {}
            Node::Eof => break,
            _ => return Err(TwimlError::TrailingContent),
        }
    }

    let response = Response { verbs };
    response.validate()?;
    Ok(response)
}

/// A reading event, with text runs (text, CDATA, entity and character references) merged.
enum Node {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End(String),
    Text(String),
    Eof,
}

/// Content of an element, as its parser sees it; whitespace-only text is skipped.
enum Child {
    Text(String),
    Element {
        name: String,
        attrs: Vec<(String, String)>,
    },
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    /// A node read while finishing a text run, handed out next.
    peeked: Option<Node>,
    /// Whether any event was read (the XML declaration must come first).
    started: bool,
}

impl<'a> Parser<'a> {
    fn new(xml: &'a str) -> Self {
        let mut reader = Reader::from_str(xml);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        config.trim_text(false);
        Self {
            reader,
            peeked: None,
            started: false,
        }
    }

    fn syntax(&self, message: impl Into<String>) -> TwimlError {
        TwimlError::Xml {
            position: self.reader.buffer_position(),
            message: message.into(),
        }
    }

    fn xml_error(&self, error: impl Into<quick_xml::Error>) -> TwimlError {
        self.syntax(error.into().to_string())
    }

    fn next(&mut self) -> Result<Node, TwimlError> {
        if let Some(node) = self.peeked.take() {
            return Ok(node);
        }
        let mut text: Option<String> = None;
        loop {
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    return Err(TwimlError::Xml {
                        position: self.reader.error_position(),
                        message: error.to_string(),
                    });
                }
            };
            let first = !self.started;
            self.started = true;
            let node = match event {
                Event::Text(t) => {
                    let piece = t.xml10_content().map_err(|e| self.xml_error(e))?;
                    text.get_or_insert_with(String::new).push_str(&piece);
                    continue;
                }
                Event::CData(c) => {
                    let piece = c.xml10_content().map_err(|e| self.xml_error(e))?;
                    text.get_or_insert_with(String::new).push_str(&piece);
                    continue;
                }
                Event::GeneralRef(r) => {
                    let buffer = text.get_or_insert_with(String::new);
                    if let Some(c) = r.resolve_char_ref().map_err(|e| self.xml_error(e))? {
                        buffer.push(c);
                    } else {
                        let name = r.decode().map_err(|e| self.xml_error(e))?;
                        match resolve_predefined_entity(&name) {
                            Some(value) => buffer.push_str(value),
                            None => return Err(self.syntax(format!("unknown entity &{name};"))),
                        }
                    }
                    continue;
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Decl(_) if first => continue,
                Event::Decl(_) => {
                    return Err(self.syntax("the XML declaration must come first"));
                }
                Event::DocType(_) => return Err(self.syntax("DOCTYPE is not allowed in TwiML")),
                Event::Start(start) | Event::Empty(start) => {
                    // `expand_empty_elements` turns `<a/>` into Start + End: no Empty arrives.
                    let name = std::str::from_utf8(start.name().as_ref())
                        .map_err(|e| self.syntax(e.to_string()))?
                        .to_owned();
                    let mut attrs = Vec::new();
                    for attr in start.attributes() {
                        let attr = attr.map_err(|e| self.xml_error(e))?;
                        let key = std::str::from_utf8(attr.key.as_ref())
                            .map_err(|e| self.syntax(e.to_string()))?
                            .to_owned();
                        let value = attr
                            .decode_and_unescape_value(self.reader.decoder())
                            .map_err(|e| self.xml_error(e))?
                            .into_owned();
                        attrs.push((key, value));
                    }
                    Node::Start { name, attrs }
                }
                Event::End(end) => Node::End(
                    std::str::from_utf8(end.name().as_ref())
                        .map_err(|e| self.syntax(e.to_string()))?
                        .to_owned(),
                ),
                Event::Eof => Node::Eof,
            };
            return Ok(match text {
                Some(text) => {
                    self.peeked = Some(node);
                    Node::Text(text)
                }
                None => node,
            });
        }
    }

    /// Reads the content of `parent` up to its end tag, handing each child to `on_child`.
    fn children(
        &mut self,
        parent: &str,
        mut on_child: impl FnMut(&mut Self, Child) -> Result<(), TwimlError>,
    ) -> Result<(), TwimlError> {
        loop {
            match self.next()? {
                Node::Text(text) if is_blank(&text) => {}
                Node::Text(text) => on_child(self, Child::Text(text))?,
                Node::Start { name, attrs } => on_child(self, Child::Element { name, attrs })?,
                // The reader checks that end tags match their start tags.
                Node::End(_) => return Ok(()),
                Node::Eof => {
                    return Err(TwimlError::Unclosed {
                        element: parent.to_owned(),
                    });
                }
            }
        }
    }

    /// The trimmed text of an element that holds nothing else.
    fn text_only(&mut self, element: &str) -> Result<String, TwimlError> {
        let mut content = String::new();
        self.children(element, |_, child| match child {
            Child::Text(text) => {
                content.push_str(&text);
                Ok(())
            }
            Child::Element { name, .. } => Err(unexpected_element(element, name)),
        })?;
        Ok(trim_xml(&content).to_owned())
    }

    /// An element that must be empty.
    fn nothing(&mut self, element: &str) -> Result<(), TwimlError> {
        self.children(element, |_, child| match child {
            Child::Text(text) => Err(unexpected_text(element, &text)),
            Child::Element { name, .. } => Err(unexpected_element(element, name)),
        })
    }

    fn verb(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<Verb, TwimlError> {
        let a = Attrs::new(&name, attrs);
        Ok(match name.as_str() {
            "Say" => Verb::Say(self.say(a)?),
            "Play" => Verb::Play(self.play(a)?),
            "Pause" => Verb::Pause {
                length: self.pause(a)?,
            },
            "Enqueue" => Verb::Enqueue(Enqueue {
                action: a.text("action"),
                method: a.text("method"),
                wait_url: a.text("waitUrl"),
                wait_url_method: a.text("waitUrlMethod"),
                max_queue_size: a.number("maxQueueSize")?,
                name: self.text_only("Enqueue")?,
            }),
            "Dial" => Verb::Dial(self.dial(a)?),
            "Gather" => Verb::Gather(self.gather(a)?),
            "Redirect" => Verb::Redirect {
                method: a.text("method"),
                url: self.text_only("Redirect")?,
            },
            "Leave" => {
                self.nothing("Leave")?;
                Verb::Leave
            }
            "Hangup" => {
                self.nothing("Hangup")?;
                Verb::Hangup
            }
            "Record" => {
                let record = Record {
                    action: a.text("action"),
                    max_length: a.number("maxLength")?,
                    play_beep: a.boolean("playBeep")?,
                    transcribe: a.boolean("transcribe")?,
                    finish_on_key: a.text("finishOnKey"),
                };
                self.nothing("Record")?;
                Verb::Record(record)
            }
            "Reject" => {
                self.nothing("Reject")?;
                Verb::Reject
            }
            _ => return Err(unexpected_element("Response", name)),
        })
    }

    fn say(&mut self, a: Attrs) -> Result<Say, TwimlError> {
        Ok(Say {
            voice: a.text("voice"),
            language: a.text("language"),
            loop_: a.number("loop")?,
            text: self.text_only("Say")?,
        })
    }

    fn play(&mut self, a: Attrs) -> Result<Play, TwimlError> {
        Ok(Play {
            loop_: a.number("loop")?,
            url: self.text_only("Play")?,
        })
    }

    fn pause(&mut self, a: Attrs) -> Result<u32, TwimlError> {
        let length = a.number("length")?.unwrap_or(1);
        self.nothing("Pause")?;
        Ok(length)
    }

    fn dial(&mut self, a: Attrs) -> Result<Dial, TwimlError> {
        let mut dial = Dial {
            action: a.text("action"),
            method: a.text("method"),
            timeout: a.number("timeout")?,
            answer_on_bridge: a.boolean("answerOnBridge")?,
            caller_id: a.text("callerId"),
            time_limit: a.number("timeLimit")?,
            nouns: Vec::new(),
        };
        let nouns = &mut dial.nouns;
        self.children("Dial", |p, child| {
            let noun = match child {
                // `<Dial>+14155550100</Dial>` is short for a `<Number>`.
                Child::Text(text) => DialNoun::Number(Number::new(trim_xml(&text))),
                Child::Element { name, attrs } => {
                    let a = Attrs::new(&name, attrs);
                    match name.as_str() {
                        "Client" => DialNoun::Client(p.client(a)?),
                        "Number" => DialNoun::Number(Number {
                            status_callback: a.text("statusCallback"),
                            status_callback_event: a.text("statusCallbackEvent"),
                            number: p.text_only("Number")?,
                        }),
                        "Queue" => DialNoun::Queue {
                            name: p.text_only("Queue")?,
                        },
                        _ => return Err(unexpected_element("Dial", name)),
                    }
                }
            };
            nouns.push(noun);
            Ok(())
        })?;
        Ok(dial)
    }

    fn client(&mut self, a: Attrs) -> Result<Client, TwimlError> {
        let mut client = Client {
            identity: String::new(),
            status_callback: a.text("statusCallback"),
            status_callback_event: a.text("statusCallbackEvent"),
            status_callback_method: a.text("statusCallbackMethod"),
            parameters: Vec::new(),
        };
        let mut identity: Option<String> = None;
        let parameters = &mut client.parameters;
        self.children("Client", |p, child| {
            let found = match child {
                // `<Client>alice</Client>` is the short form of `<Identity>alice</Identity>`.
                Child::Text(text) => trim_xml(&text).to_owned(),
                Child::Element { name, attrs } => match name.as_str() {
                    "Identity" => p.text_only("Identity")?,
                    "Parameter" => {
                        let a = Attrs::new(&name, attrs);
                        let name = a.text("name").unwrap_or_default();
                        let value = a.text("value").unwrap_or_default();
                        p.nothing("Parameter")?;
                        parameters.push((name, value));
                        return Ok(());
                    }
                    _ => return Err(unexpected_element("Client", name)),
                },
            };
            if identity.replace(found).is_some() {
                return Err(TwimlError::Duplicate {
                    parent: "Client".to_owned(),
                    element: "Identity".to_owned(),
                });
            }
            Ok(())
        })?;
        client.identity = identity.unwrap_or_default();
        Ok(client)
    }

    fn gather(&mut self, a: Attrs) -> Result<Gather, TwimlError> {
        let mut gather = Gather {
            input: a.text("input"),
            num_digits: a.number("numDigits")?,
            action: a.text("action"),
            method: a.text("method"),
            timeout: a.number("timeout")?,
            finish_on_key: a.text("finishOnKey"),
            children: Vec::new(),
        };
        let children = &mut gather.children;
        self.children("Gather", |p, child| {
            let child = match child {
                Child::Text(text) => return Err(unexpected_text("Gather", &text)),
                Child::Element { name, attrs } => {
                    let a = Attrs::new(&name, attrs);
                    match name.as_str() {
                        "Say" => GatherChild::Say(p.say(a)?),
                        "Play" => GatherChild::Play(p.play(a)?),
                        "Pause" => GatherChild::Pause {
                            length: p.pause(a)?,
                        },
                        _ => return Err(unexpected_element("Gather", name)),
                    }
                }
            };
            children.push(child);
            Ok(())
        })?;
        Ok(gather)
    }
}

/// The attributes of one element, read on demand; unknown ones are ignored, as Twilio does.
struct Attrs {
    element: String,
    list: Vec<(String, String)>,
}

impl Attrs {
    fn new(element: &str, list: Vec<(String, String)>) -> Self {
        Self {
            element: element.to_owned(),
            list,
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        self.list
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn invalid(&self, key: &str, value: String, expected: &'static str) -> TwimlError {
        TwimlError::InvalidAttribute {
            element: self.element.clone(),
            attribute: key.to_owned(),
            value: shorten(&value),
            expected,
        }
    }

    fn number(&self, key: &str) -> Result<Option<u32>, TwimlError> {
        let Some(value) = self.text(key) else {
            return Ok(None);
        };
        let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match value.parse::<u32>() {
            Ok(n) if digits_only => Ok(Some(n)),
            _ => Err(self.invalid(key, value, "a non-negative integer")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, TwimlError> {
        let Some(value) = self.text(key) else {
            return Ok(None);
        };
        if value.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if value.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(self.invalid(key, value, "true or false"))
        }
    }
}

/// Every element name this module knows, to tell misplaced elements from unknown ones.
const KNOWN_ELEMENTS: &[&str] = &[
    "Response",
    "Say",
    "Play",
    "Pause",
    "Enqueue",
    "Dial",
    "Gather",
    "Redirect",
    "Leave",
    "Hangup",
    "Record",
    "Reject",
    "Client",
    "Identity",
    "Parameter",
    "Number",
    "Queue",
];

fn unexpected_element(parent: &str, element: String) -> TwimlError {
    let parent = parent.to_owned();
    if KNOWN_ELEMENTS.contains(&element.as_str()) {
        TwimlError::NotAllowed { parent, element }
    } else {
        TwimlError::UnknownElement { parent, element }
    }
}

fn unexpected_text(element: &str, text: &str) -> TwimlError {
    TwimlError::UnexpectedText {
        element: element.to_owned(),
        text: shorten(trim_xml(text)),
    }
}

/// At most 64 characters of `s`, for error messages.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_blank(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

    fn round_trip(response: &Response) {
        let xml = response.to_xml();
        assert_eq!(parse(&xml).as_ref(), Ok(response), "{xml}");
    }

    fn err(xml: &str) -> TwimlError {
        match parse(xml) {
            Ok(r) => panic!("parsed {xml:?} as {r:?}"),
            Err(e) => e,
        }
    }

    /// Every verb, every attribute set.
    fn everything() -> Response {
        Response::new()
            .verb(Say {
                text: "Welcome to Acme".into(),
                voice: Some("Polly.Joanna".into()),
                language: Some("en-US".into()),
                loop_: Some(2),
            })
            .verb(Play {
                url: "https://cdn.example/hold.mp3".into(),
                loop_: Some(0),
            })
            .pause(3)
            .verb(Enqueue {
                name: "support".into(),
                action: Some("/twilio/queue-exit".into()),
                method: Some("POST".into()),
                wait_url: Some("/twilio/wait".into()),
                wait_url_method: Some("POST".into()),
                max_queue_size: Some(5000),
            })
            .verb(Dial {
                action: Some("/twilio/dial-result?call=CA1&agent=a1".into()),
                method: Some("POST".into()),
                timeout: Some(20),
                answer_on_bridge: Some(true),
                caller_id: Some("+14155550100".into()),
                time_limit: Some(14400),
                nouns: vec![
                    DialNoun::Client(Client {
                        identity: "agent-alice".into(),
                        status_callback: Some("/twilio/agent-leg".into()),
                        status_callback_event: Some("answered completed".into()),
                        status_callback_method: Some("POST".into()),
                        parameters: vec![
                            ("CallSid".into(), "CA1".into()),
                            ("Queue".into(), "support".into()),
                        ],
                    }),
                    DialNoun::Number(Number {
                        number: "+14155550199".into(),
                        status_callback: Some("/twilio/number-leg".into()),
                        status_callback_event: Some("completed".into()),
                    }),
                    DialNoun::Queue {
                        name: "support".into(),
                    },
                ],
            })
            .verb(Gather {
                input: Some("dtmf".into()),
                num_digits: Some(1),
                action: Some("/twilio/callback-choice".into()),
                method: Some("POST".into()),
                timeout: Some(5),
                finish_on_key: Some(String::new()),
                children: vec![
                    Say::new("Press 1 to be called back.").into(),
                    Play::new("https://cdn.example/beep.mp3").into(),
                    GatherChild::Pause { length: 2 },
                ],
            })
            .verb(Verb::Redirect {
                url: "/twilio/wait?n=2".into(),
                method: Some("GET".into()),
            })
            .leave()
            .hangup()
            .verb(Record {
                action: Some("/twilio/voicemail".into()),
                max_length: Some(120),
                play_beep: Some(false),
                transcribe: Some(true),
                finish_on_key: Some("#".into()),
            })
            .reject()
    }

    /// Every verb, no optional attribute set.
    fn bare() -> Response {
        Response::new()
            .say("Hi")
            .play("https://cdn.example/hold.mp3")
            .pause(1)
            .verb(Enqueue::new("support"))
            .verb(Dial {
                nouns: vec![Client::new("bob").into()],
                ..Dial::default()
            })
            .verb(Gather::default())
            .redirect("/twilio/wait")
            .leave()
            .hangup()
            .verb(Record::default())
            .reject()
    }

    #[test]
    fn every_verb_round_trips() {
        round_trip(&everything());
        round_trip(&bare());
        round_trip(&Response::new());
        for verb in everything().verbs.into_iter().chain(bare().verbs) {
            round_trip(&Response { verbs: vec![verb] });
        }
    }

    #[test]
    fn writes_the_expected_document() {
        let xml = Response::new()
            .say("Hello")
            .verb(Enqueue {
                wait_url: Some("/twilio/wait".into()),
                action: Some("/twilio/queue-exit".into()),
                ..Enqueue::new("support")
            })
            .to_xml();
        assert_eq!(
            xml,
            format!(
                "{DECL}<Response><Say>Hello</Say>\
                 <Enqueue action=\"/twilio/queue-exit\" waitUrl=\"/twilio/wait\">support</Enqueue>\
                 </Response>"
            )
        );
        assert_eq!(Response::new().to_xml(), format!("{DECL}<Response/>"));
        let dial = Response::new()
            .verb(Dial {
                answer_on_bridge: Some(true),
                nouns: vec![Client {
                    parameters: vec![("k".into(), "v".into())],
                    ..Client::new("alice")
                }
                .into()],
                ..Dial::default()
            })
            .to_xml();
        assert!(
            dial.ends_with(
                "<Dial answerOnBridge=\"true\"><Client><Identity>alice</Identity>\
                 <Parameter name=\"k\" value=\"v\"/></Client></Dial></Response>"
            ),
            "{dial}"
        );
    }

    #[test]
    fn escapes_caller_controlled_text_and_attributes() {
        let nasty = r#"<&>"' </Say><Hangup/> &amp; ]]>"#;
        let response = Response::new()
            .verb(Say {
                text: nasty.into(),
                voice: Some(nasty.into()),
                language: Some("a\"b'c".into()),
                loop_: None,
            })
            .verb(Dial {
                action: Some("/r?a=1&b=<2>".into()),
                nouns: vec![Client {
                    parameters: vec![(nasty.into(), nasty.into())],
                    ..Client::new(nasty)
                }
                .into()],
                ..Dial::default()
            });
        let xml = response.to_xml();
        assert!(!xml.contains("<&>"), "{xml}");
        assert!(!xml.contains("</Say><Hangup/>"), "{xml}");
        assert!(xml.contains("&lt;&amp;&gt;"), "{xml}");
        assert!(xml.contains("a&quot;b&apos;c"), "{xml}");
        assert!(xml.contains("/r?a=1&amp;b=&lt;2&gt;"), "{xml}");
        round_trip(&response);
    }

    #[test]
    fn whitespace_in_attributes_and_cr_in_text_survive() {
        let response = Response::new()
            .verb(Say {
                text: "line one\r\nline two\ttab".into(),
                voice: Some("a\tb\nc\r\nd".into()),
                ..Say::default()
            })
            .verb(Dial {
                nouns: vec![Client {
                    parameters: vec![("multi".into(), " spaced\nvalue ".into())],
                    ..Client::new("x")
                }
                .into()],
                ..Dial::default()
            });
        let xml = response.to_xml();
        assert!(xml.contains("a&#9;b&#10;c&#13;&#10;d"), "{xml}");
        round_trip(&response);
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        let response = Response::new().say("a\u{0}b\u{1b}c\u{fffe}d");
        let xml = response.to_xml();
        assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'), "{xml:?}");
        assert_eq!(parse(&xml), Ok(Response::new().say("abcd")));
    }

    #[test]
    fn non_ascii_text_round_trips() {
        round_trip(&Response::new().say("Vous êtes le numéro 3 — 日本語 🎧"));
    }

    #[test]
    fn twilio_docs_enqueue_with_wait_url() {
        // From Twilio's <Enqueue> documentation.
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Enqueue waitUrl="wait-music.xml">support</Enqueue>
</Response>"#;
        assert_eq!(
            parse(xml),
            Ok(Response {
                verbs: vec![Verb::Enqueue(Enqueue {
                    wait_url: Some("wait-music.xml".into()),
                    ..Enqueue::new("support")
                })]
            })
        );
    }

    #[test]
    fn twilio_docs_client_with_identity_and_parameters() {
        // From Twilio's <Client> documentation (note the space before `=`).
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Dial>
    <Client>
      <Identity>user_jane</Identity>
      <Parameter name="FirstName" value ="Jane"/>
      <Parameter name="LastName" value ="Doe" />
    </Client>
  </Dial>
</Response>"#;
        let expected = Response::new().verb(Dial {
            nouns: vec![Client {
                parameters: vec![
                    ("FirstName".into(), "Jane".into()),
                    ("LastName".into(), "Doe".into()),
                ],
                ..Client::new("user_jane")
            }
            .into()],
            ..Dial::default()
        });
        assert_eq!(parse(xml), Ok(expected));
    }

    #[test]
    fn twilio_docs_gather_and_short_forms() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <Gather action="/process_gather.php" method="GET">
        <Say>Please enter your account number,
        followed by the pound sign</Say>
    </Gather>
    <Say>We didn't receive any input. Goodbye!</Say>
    <!-- a comment -->
    <Dial timeout="10">415-123-4567</Dial>
    <Dial><Client>jenny</Client></Dial>
    <Pause/>
</Response>
"#;
        let expected = Response::new()
            .verb(Gather {
                action: Some("/process_gather.php".into()),
                method: Some("GET".into()),
                children: vec![Say::new(
                    "Please enter your account number,\n        followed by the pound sign",
                )
                .into()],
                ..Gather::default()
            })
            .say("We didn't receive any input. Goodbye!")
            .verb(Dial {
                timeout: Some(10),
                nouns: vec![Number::new("415-123-4567").into()],
                ..Dial::default()
            })
            .verb(Dial {
                nouns: vec![Client::new("jenny").into()],
                ..Dial::default()
            })
            .pause(1);
        assert_eq!(parse(xml), Ok(expected));
    }

    #[test]
    fn attributes_are_parsed_and_unknown_ones_ignored() {
        let xml = r#"<Response>
            <Record action="/vm" maxLength="30" playBeep="TRUE" transcribe="false"
                    finishOnKey="*" trim="trim-silence"/>
            <Dial answerOnBridge="false" timeLimit="60" ringTone="us"><Number>+1</Number></Dial>
            <Say loop="0" voice='alice'>a &amp; b &#x263A; &#65;<![CDATA[ <raw> ]]></Say>
        </Response>"#;
        let parsed = parse(xml);
        assert_eq!(
            parsed,
            Ok(Response::new()
                .verb(Record {
                    action: Some("/vm".into()),
                    max_length: Some(30),
                    play_beep: Some(true),
                    transcribe: Some(false),
                    finish_on_key: Some("*".into()),
                })
                .verb(Dial {
                    answer_on_bridge: Some(false),
                    time_limit: Some(60),
                    nouns: vec![Number::new("+1").into()],
                    ..Dial::default()
                })
                .verb(Say {
                    loop_: Some(0),
                    voice: Some("alice".into()),
                    ..Say::new("a & b ☺ A <raw>")
                }))
        );
    }

    #[test]
    fn bad_numbers_and_booleans_name_element_and_attribute() {
        let cases = [
            (
                r#"<Response><Pause length="two"/></Response>"#,
                "Pause",
                "length",
            ),
            (
                r#"<Response><Pause length="-1"/></Response>"#,
                "Pause",
                "length",
            ),
            (
                r#"<Response><Pause length="+1"/></Response>"#,
                "Pause",
                "length",
            ),
            (
                r#"<Response><Pause length=""/></Response>"#,
                "Pause",
                "length",
            ),
            (
                r#"<Response><Say loop="1.5">x</Say></Response>"#,
                "Say",
                "loop",
            ),
            (
                r#"<Response><Enqueue maxQueueSize="99999999999">q</Enqueue></Response>"#,
                "Enqueue",
                "maxQueueSize",
            ),
            (
                r#"<Response><Gather numDigits=" 1"/></Response>"#,
                "Gather",
                "numDigits",
            ),
            (
                r#"<Response><Dial answerOnBridge="yes"><Number>1</Number></Dial></Response>"#,
                "Dial",
                "answerOnBridge",
            ),
            (
                r#"<Response><Record playBeep="1"/></Response>"#,
                "Record",
                "playBeep",
            ),
        ];
        for (xml, element, attribute) in cases {
            match err(xml) {
                TwimlError::InvalidAttribute {
                    element: e,
                    attribute: a,
                    ..
                } => assert_eq!((e.as_str(), a.as_str()), (element, attribute), "{xml}"),
                other => panic!("{xml}: {other:?}"),
            }
        }
        let message = err(r#"<Response><Pause length="two"/></Response>"#).to_string();
        assert!(
            message.contains("<Pause>") && message.contains("length"),
            "{message}"
        );
    }

    #[test]
    fn bad_nesting_is_refused() {
        let not_allowed = |xml: &str, parent: &str, element: &str| {
            assert_eq!(
                err(xml),
                TwimlError::NotAllowed {
                    parent: parent.into(),
                    element: element.into()
                },
                "{xml}"
            );
        };
        not_allowed(
            "<Response><Gather><Dial><Number>1</Number></Dial></Gather></Response>",
            "Gather",
            "Dial",
        );
        not_allowed(
            "<Response><Gather><Gather/></Gather></Response>",
            "Gather",
            "Gather",
        );
        not_allowed(
            "<Response><Dial><Enqueue>q</Enqueue></Dial></Response>",
            "Dial",
            "Enqueue",
        );
        not_allowed(
            "<Response><Number>1</Number></Response>",
            "Response",
            "Number",
        );
        not_allowed("<Response><Response/></Response>", "Response", "Response");
        not_allowed(
            "<Response><Say><Play>u</Play></Say></Response>",
            "Say",
            "Play",
        );
        not_allowed(
            "<Response><Dial><Client><Say>x</Say></Client></Dial></Response>",
            "Client",
            "Say",
        );
        not_allowed(
            "<Response><Hangup><Leave/></Hangup></Response>",
            "Hangup",
            "Leave",
        );
        assert_eq!(
            err("<Response><Dial><Client><Identity>a</Identity>b</Client></Dial></Response>"),
            TwimlError::Duplicate {
                parent: "Client".into(),
                element: "Identity".into()
            }
        );
    }

    #[test]
    fn unknown_verbs_and_roots_are_refused() {
        assert_eq!(
            err("<Response><Connect/></Response>"),
            TwimlError::UnknownElement {
                parent: "Response".into(),
                element: "Connect".into()
            }
        );
        assert_eq!(
            err("<Response><say>lowercase</say></Response>"),
            TwimlError::UnknownElement {
                parent: "Response".into(),
                element: "say".into()
            }
        );
        assert_eq!(
            err("<Response><Say>Hi <break time=\"1s\"/></Say></Response>"),
            TwimlError::UnknownElement {
                parent: "Say".into(),
                element: "break".into()
            }
        );
        assert_eq!(
            err("<Dial><Number>1</Number></Dial>"),
            TwimlError::WrongRoot {
                found: "Dial".into()
            }
        );
        assert_eq!(
            err("<html><body/></html>"),
            TwimlError::WrongRoot {
                found: "html".into()
            }
        );
        assert_eq!(err(""), TwimlError::MissingRoot);
        assert_eq!(err(DECL), TwimlError::MissingRoot);
        assert_eq!(err("  <!-- only a comment -->  "), TwimlError::MissingRoot);
        assert!(matches!(err("hello"), TwimlError::Xml { .. }));
        assert!(matches!(
            err("<Response>stray text<Hangup/></Response>"),
            TwimlError::UnexpectedText { .. }
        ));
        assert!(matches!(
            err("<Response><Gather>press 1</Gather></Response>"),
            TwimlError::UnexpectedText { .. }
        ));
        assert_eq!(err("<Response/><Response/>"), TwimlError::TrailingContent);
        assert_eq!(err("<Response/>trailing"), TwimlError::TrailingContent);
    }

    #[test]
    fn missing_required_content_is_refused() {
        let cases = [
            ("<Response><Enqueue/></Response>", "Enqueue"),
            ("<Response><Enqueue>   </Enqueue></Response>", "Enqueue"),
            ("<Response><Redirect/></Response>", "Redirect"),
            ("<Response><Dial/></Response>", "Dial"),
            ("<Response><Dial><Client/></Dial></Response>", "Client"),
            (
                "<Response><Dial><Number></Number></Dial></Response>",
                "Number",
            ),
            ("<Response><Dial><Queue/></Dial></Response>", "Queue"),
            (
                r#"<Response><Dial><Client>a<Parameter value="v"/></Client></Dial></Response>"#,
                "Parameter",
            ),
        ];
        for (xml, element) in cases {
            match err(xml) {
                TwimlError::Missing { element: e, .. } => assert_eq!(e, element, "{xml}"),
                other => panic!("{xml}: {other:?}"),
            }
        }
    }

    #[test]
    fn twilio_limits_are_enforced() {
        let long_name = "q".repeat(MAX_QUEUE_NAME_CHARS + 1);
        assert!(matches!(
            parse(&format!(
                "<Response><Enqueue>{long_name}</Enqueue></Response>"
            )),
            Err(TwimlError::TooLong { .. })
        ));
        let ok_name = "é".repeat(MAX_QUEUE_NAME_CHARS);
        assert!(parse(&format!(
            "<Response><Enqueue>{ok_name}</Enqueue></Response>"
        ))
        .is_ok());
        assert!(matches!(
            err(r#"<Response><Enqueue maxQueueSize="5001">q</Enqueue></Response>"#),
            TwimlError::InvalidAttribute { .. }
        ));
        assert!(matches!(
            err(r#"<Response><Enqueue maxQueueSize="0">q</Enqueue></Response>"#),
            TwimlError::InvalidAttribute { .. }
        ));

        // 64 kB for a document, 4,000 characters inline.
        let big = Response::new().say("x".repeat(MAX_TWIML_BYTES));
        assert!(matches!(
            big.to_xml_checked(),
            Err(TwimlError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(&big.to_xml()),
            Err(TwimlError::TooLarge { .. })
        ));
        let medium = Response::new().say("x".repeat(MAX_INLINE_TWIML_CHARS));
        assert!(medium.to_xml_checked().is_ok());
        assert!(matches!(
            medium.to_inline_xml(),
            Err(TwimlError::InlineTooLong { .. })
        ));
        assert_eq!(
            everything().to_inline_xml().as_deref(),
            Ok(everything().to_xml().as_str())
        );
        assert!(matches!(
            Response::new().verb(Enqueue::new("")).to_xml_checked(),
            Err(TwimlError::Missing { .. })
        ));
    }

    #[test]
    fn malformed_xml_errors() {
        for xml in [
            "<",
            "<<<>>>",
            "<Response>",
            "<Response><Say>x</Response>",
            "<Response></Respons>",
            "</Response>",
            "<Response><Say>&nbsp;</Say></Response>",
            "<Response><Say>&#0;</Say></Response>",
            "<Response><Say>& </Say></Response>",
            r#"<Response><Say voice="a" voice="b">x</Say></Response>"#,
            r#"<Response><Say voice=a>x</Say></Response>"#,
            "<!DOCTYPE r [<!ENTITY x \"y\">]><Response><Say>&x;</Say></Response>",
            "<Response/><?xml version=\"1.0\"?>",
            " <?xml version=\"1.0\"?><Response/>",
            "<Response><!-- bad -- comment --></Response>",
        ] {
            assert!(parse(xml).is_err(), "{xml:?} parsed: {:?}", parse(xml));
        }
        // A BOM, a declaration and comments around the root are fine.
        assert_eq!(
            parse("\u{feff}<?xml version=\"1.0\"?><!-- c --><Response/><!-- d -->\n"),
            Ok(Response::new())
        );
    }

    mod properties {
        use super::*;
        use proptest::option::of;
        use proptest::prelude::*;

        /// Element text: anything but leading/trailing whitespace (which reading trims).
        fn text() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9<>&\"' \t\n;#éü日🎧-]{0,16}".prop_map(|s| trim_xml(&s).to_owned())
        }

        fn required_text() -> impl Strategy<Value = String> {
            text().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s })
        }

        /// Attribute values keep everything, whitespace included.
        fn value() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9<>&\"' \t\r\n;#=?/éü日🎧-]{0,16}"
        }

        fn say() -> impl Strategy<Value = Say> {
            (text(), of(value()), of(value()), of(any::<u32>())).prop_map(
                |(text, voice, language, loop_)| Say {
                    text,
                    voice,
                    language,
                    loop_,
                },
            )
        }

        fn play() -> impl Strategy<Value = Play> {
            (text(), of(any::<u32>())).prop_map(|(url, loop_)| Play { url, loop_ })
        }

        fn noun() -> impl Strategy<Value = DialNoun> {
            prop_oneof![
                (
                    required_text(),
                    of(value()),
                    of(value()),
                    of(value()),
                    prop::collection::vec(("[a-zA-Z ]{1,8}", value()), 0..3)
                )
                    .prop_map(|(identity, cb, event, method, parameters)| {
                        DialNoun::Client(Client {
                            identity,
                            status_callback: cb,
                            status_callback_event: event,
                            status_callback_method: method,
                            parameters,
                        })
                    }),
                (required_text(), of(value()), of(value())).prop_map(|(number, cb, event)| {
                    DialNoun::Number(Number {
                        number,
                        status_callback: cb,
                        status_callback_event: event,
                    })
                }),
                required_text().prop_map(|name| DialNoun::Queue { name }),
            ]
        }

        fn verb() -> impl Strategy<Value = Verb> {
            prop_oneof![
                say().prop_map(Verb::Say),
                play().prop_map(Verb::Play),
                any::<u32>().prop_map(|length| Verb::Pause { length }),
                (
                    required_text(),
                    of(value()),
                    of(value()),
                    of(value()),
                    of(value()),
                    of(1..=MAX_QUEUE_SIZE)
                )
                    .prop_map(
                        |(name, action, method, wait_url, wait_url_method, size)| {
                            Verb::Enqueue(Enqueue {
                                name,
                                action,
                                method,
                                wait_url,
                                wait_url_method,
                                max_queue_size: size,
                            })
                        }
                    ),
                (
                    (of(value()), of(value()), of(any::<u32>())),
                    (of(any::<bool>()), of(value()), of(any::<u32>())),
                    prop::collection::vec(noun(), 1..4)
                )
                    .prop_map(
                        |((action, method, timeout), (bridge, caller_id, limit), nouns)| {
                            Verb::Dial(Dial {
                                action,
                                method,
                                timeout,
                                answer_on_bridge: bridge,
                                caller_id,
                                time_limit: limit,
                                nouns,
                            })
                        }
                    ),
                (
                    (of(value()), of(any::<u32>()), of(value())),
                    (of(value()), of(any::<u32>()), of(value())),
                    prop::collection::vec(
                        prop_oneof![
                            say().prop_map(GatherChild::Say),
                            play().prop_map(GatherChild::Play),
                            any::<u32>().prop_map(|length| GatherChild::Pause { length }),
                        ],
                        0..4
                    )
                )
                    .prop_map(
                        |((input, num_digits, action), (method, timeout, finish), children)| {
                            Verb::Gather(Gather {
                                input,
                                num_digits,
                                action,
                                method,
                                timeout,
                                finish_on_key: finish,
                                children,
                            })
                        }
                    ),
                (required_text(), of(value()))
                    .prop_map(|(url, method)| Verb::Redirect { url, method }),
                Just(Verb::Leave),
                Just(Verb::Hangup),
                (
                    of(value()),
                    of(any::<u32>()),
                    of(any::<bool>()),
                    of(any::<bool>()),
                    of(value())
                )
                    .prop_map(
                        |(action, max_length, play_beep, transcribe, finish)| {
                            Verb::Record(Record {
                                action,
                                max_length,
                                play_beep,
                                transcribe,
                                finish_on_key: finish,
                            })
                        }
                    ),
                Just(Verb::Reject),
            ]
        }

        proptest! {
            #[test]
            fn round_trip_any_valid_response(verbs in prop::collection::vec(verb(), 0..6)) {
                let response = Response { verbs };
                prop_assert_eq!(response.validate(), Ok(()));
                prop_assert_eq!(parse(&response.to_xml()), Ok(response));
            }

            #[test]
            fn arbitrary_strings_never_panic(s in any::<String>()) {
                let _ = parse(&s);
            }

            #[test]
            fn xml_like_garbage_never_panics(
                body in "([<>/=\"' &;#!?\\[\\]-]|Response|Say|Dial|Gather|Client|Identity|Parameter|Pause|length|loop|name|value|CDATA|amp|x|1){0,40}"
            ) {
                let _ = parse(&body);
                let _ = parse(&format!("<Response>{body}</Response>"));
                let _ = parse(&format!("<Response><Dial>{body}</Dial></Response>"));
            }

            #[test]
            fn mutated_documents_never_panic(cut in 0usize..2000, byte in any::<u8>()) {
                let xml = super::everything().to_xml();
                let mut bytes = xml.into_bytes();
                let at = cut % bytes.len();
                bytes[at] = byte;
                let mutated = String::from_utf8_lossy(&bytes).into_owned();
                let _ = parse(&mutated);
                let _ = parse(mutated.get(..cut).unwrap_or(&mutated));
            }
        }
    }
}
