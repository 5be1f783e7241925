//! Load runs against the Twilio simulator, and the Erlang C yardstick they are judged by.

pub mod erlang;
