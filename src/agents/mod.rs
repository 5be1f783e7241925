//! The agent API (heartbeat, status) and the admin API, with the tokens that guard them.

pub mod token;
