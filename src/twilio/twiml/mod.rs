//! TwiML, the XML callq answers Twilio's voice webhooks with: ONE model ([`Response`], [`Verb`]
//! and the structs under them) that callq's handlers write ([`Response::to_xml`]) and that callq's
//! Twilio simulator and tests read back ([`parse()`]), so what is written and what is read can never
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
//!
//! Laid out as `model` (the verbs and nouns, how they are built and what Twilio would
//! refuse), `write` (the XML writer and Twilio's size checks) and `parse` (the strict reader).

mod model;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use model::{
    Client, Dial, DialNoun, Enqueue, Gather, GatherChild, Number, Play, Record, Response, Say,
    TwimlError, Verb, MAX_INLINE_TWIML_CHARS, MAX_QUEUE_NAME_CHARS, MAX_QUEUE_SIZE,
    MAX_TWIML_BYTES,
};
pub use parse::parse;
