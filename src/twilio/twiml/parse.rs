//! Reading TwiML strictly, as Twilio does: [`parse`] refuses what Twilio refuses (see the
//! module documentation of `twiml`), ignores unknown attributes and trims element text.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::model::{
    Client, Dial, DialNoun, Enqueue, Gather, GatherChild, Number, Play, Record, Response, Say,
    TwimlError, Verb, MAX_TWIML_BYTES,
};

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
            record: a.text("record"),
            recording_status_callback: a.text("recordingStatusCallback"),
            recording_status_callback_method: a.text("recordingStatusCallbackMethod"),
            recording_status_callback_event: a.text("recordingStatusCallbackEvent"),
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

pub(super) fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}
