//! The Lua scripts in `lua/`, embedded at compile time, with `-- @include name.lua` lines
//! replaced by the files in `lua/includes/` (recursively, each file once, dependencies first).
//! Each script is called by SHA (EVALSHA); the `redis` crate falls back to loading it on
//! NOSCRIPT, so a `SCRIPT FLUSH` or a Redis restart never breaks a running process.
//!
//! Every script has the name of the [`Store`](super::Store) function that runs it: grep one
//! word and you land on both sides of a transition.

use redis::Script;

/// The shared pieces, one concern each (see the header of each file).
const INCLUDES: &[(&str, &str)] = &[
    ("keys.lua", include_str!("../../lua/includes/keys.lua")),
    ("events.lua", include_str!("../../lua/includes/events.lua")),
    ("agents.lua", include_str!("../../lua/includes/agents.lua")),
    ("calls.lua", include_str!("../../lua/includes/calls.lua")),
];

const INCLUDE_PREFIX: &str = "-- @include ";

fn include_source(name: &str) -> Option<&'static str> {
    INCLUDES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Expand `source`'s include lines into `out`, depth first, skipping files already in `done`.
/// An unknown include is a bug in `lua/` caught by the tests below, so it panics.
fn expand_into(name: &str, source: &str, done: &mut Vec<String>, out: &mut String) {
    for line in source.lines() {
        match line.trim().strip_prefix(INCLUDE_PREFIX) {
            Some(inc) => {
                let inc = inc.trim();
                if done.iter().any(|d| d == inc) {
                    continue;
                }
                done.push(inc.to_string());
                let body = include_source(inc)
                    .unwrap_or_else(|| panic!("lua/{name}: unknown include {inc}"));
                expand_into(inc, body, done, out);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

/// The script `name` with its includes expanded.
fn expand(name: &str, source: &str) -> String {
    let mut out = String::with_capacity(source.len() * 6);
    expand_into(name, source, &mut Vec::new(), &mut out);
    out
}

macro_rules! scripts {
    ($($field:ident),* $(,)?) => {
        /// Every routing script, ready to run; field `x` is `lua/x.lua`.
        pub struct Scripts { $(pub $field: Script,)* }

        impl Scripts {
            pub fn load() -> Self {
                Self { $($field: Script::new(&expand(
                    concat!(stringify!($field), ".lua"),
                    include_str!(concat!("../../lua/", stringify!($field), ".lua")),
                )),)* }
            }

            /// (file name, expanded source) of every script, for checks and `callq inspect`.
            pub fn sources() -> Vec<(&'static str, String)> {
                vec![$((
                    concat!(stringify!($field), ".lua"),
                    expand(
                        concat!(stringify!($field), ".lua"),
                        include_str!(concat!("../../lua/", stringify!($field), ".lua")),
                    ),
                )),*]
            }
        }
    };
}

scripts! {
    configure_queue,
    upsert_agent,
    delete_agent,
    revoke_tokens,
    heartbeat,
    set_agent_status,
    enqueue,
    arrive,
    claim,
    extend_offer,
    offer_result,
    complete,
    abandon,
    request_callback,
    callback_result,
    overflow,
    transfer,
    reenter,
    end_call,
    take_checks,
    reap,
    recount_agents,
    set_rollout,
    set_feature,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_header_and_expanded_includes() {
        for (file, src) in Scripts::sources() {
            let name = file.trim_end_matches(".lua");
            assert!(
                src.starts_with(&format!("-- {name}: ")),
                "{file}: opens with a comment naming its transition"
            );
            assert!(src.contains("KEYS[1]"), "{file}: header lists KEYS");
            assert!(
                src.contains("Returns"),
                "{file}: header lists the return value"
            );
            assert!(
                !src.contains(INCLUDE_PREFIX),
                "{file}: include left unexpanded"
            );
            assert!(
                src.contains("local function now_ms()"),
                "{file}: the key helpers are present"
            );
            assert_eq!(
                src.matches("local function now_ms()").count(),
                1,
                "{file}: each include is pasted once"
            );
        }
    }

    #[test]
    fn includes_come_before_what_uses_them() {
        let src = expand("t.lua", "-- t: x\n-- @include calls.lua\nlocal z = 1\n");
        let pos = |needle: &str| {
            src.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(pos("local function now_ms()") < pos("local function wake()"));
        assert!(pos("local function wake()") < pos("local function agent_release("));
        assert!(pos("local function agent_release(") < pos("local function call_requeue("));
        assert!(pos("local function call_requeue(") < pos("local z = 1"));
    }

    #[test]
    fn every_lua_file_is_registered_and_every_include_is_known() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
        let registered: Vec<_> = Scripts::sources().into_iter().map(|(f, _)| f).collect();
        for entry in std::fs::read_dir(&dir).expect("lua/ exists") {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".lua") {
                assert!(
                    registered.contains(&name.as_ref()),
                    "lua/{name} is not registered"
                );
            }
        }
        for entry in std::fs::read_dir(dir.join("includes")).expect("lua/includes exists") {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                include_source(&name).is_some(),
                "lua/includes/{name} is not registered"
            );
        }
    }
}
