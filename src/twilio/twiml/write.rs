//! Writing TwiML: [`Response::to_xml`] with quick-xml's `Writer`, compact, with the XML
//! declaration; text and attribute values escaped, characters XML 1.0 cannot carry dropped; and
//! the checked variants that refuse what Twilio would ([`MAX_TWIML_BYTES`], error 11750;
//! [`MAX_INLINE_TWIML_CHARS`] for the REST API's inline `Twiml`, error 32018).

use std::borrow::Cow;
use std::io;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use super::model::{
    DialNoun, GatherChild, Play, Response, Say, TwimlError, Verb, MAX_INLINE_TWIML_CHARS,
    MAX_TWIML_BYTES,
};

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
                .attr("record", d.record.as_deref())
                .attr(
                    "recordingStatusCallback",
                    d.recording_status_callback.as_deref(),
                )
                .attr(
                    "recordingStatusCallbackMethod",
                    d.recording_status_callback_method.as_deref(),
                )
                .attr(
                    "recordingStatusCallbackEvent",
                    d.recording_status_callback_event.as_deref(),
                )
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
