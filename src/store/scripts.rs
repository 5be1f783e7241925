//! The Lua scripts in `lua/`, embedded at compile time, with `-- @include name.lua` lines
//! replaced by the files in `lua/includes/`. Each script is called by SHA (EVALSHA); the
//! `redis` crate falls back to loading it on NOSCRIPT, so a `SCRIPT FLUSH` or a Redis restart
//! never breaks a running process.

use redis::Script;

const INCLUDES: &[(&str, &str)] = &[("common.lua", include_str!("../../lua/includes/common.lua"))];

/// Expand `-- @include name.lua` lines (one level; includes do not include).
fn expand(name: &str, source: &str) -> String {
    let mut out = String::with_capacity(source.len() * 4);
    for line in source.lines() {
        match line.trim().strip_prefix("-- @include ") {
            Some(inc) => {
                let inc = inc.trim();
                let body = INCLUDES
                    .iter()
                    .find(|(n, _)| *n == inc)
                    .map(|(_, b)| *b)
                    .unwrap_or_else(|| panic!("lua/{name}: unknown include {inc}"));
                out.push_str(body);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

macro_rules! scripts {
    ($($field:ident => $file:literal),* $(,)?) => {
        /// Every routing script, ready to run.
        pub struct Scripts { $(pub $field: Script,)* }

        impl Scripts {
            pub fn load() -> Self {
                Self { $($field: Script::new(&expand($file, include_str!(concat!("../../lua/", $file)))),)* }
            }

            /// (file name, expanded source) of every script, for checks and `callq inspect`.
            pub fn sources() -> Vec<(&'static str, String)> {
                vec![$(($file, expand($file, include_str!(concat!("../../lua/", $file))))),*]
            }
        }
    };
}

scripts! {
    queue_config => "queue_config.lua",
    agent_upsert => "agent_upsert.lua",
    agent_delete => "agent_delete.lua",
    heartbeat => "heartbeat.lua",
    agent_status => "agent_status.lua",
    enqueue => "enqueue.lua",
    claim => "claim.lua",
    extend_offer => "extend_offer.lua",
    offer_result => "offer_result.lua",
    complete => "complete.lua",
    abandon => "abandon.lua",
    callback => "callback.lua",
    overflow => "overflow.lua",
    transfer => "transfer.lua",
    reap => "reap.lua",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_header_and_expanded_includes() {
        for (file, src) in Scripts::sources() {
            assert!(src.contains("KEYS[1]"), "{file}: header lists KEYS");
            assert!(
                src.contains("Returns"),
                "{file}: header lists the return value"
            );
            assert!(
                !src.contains("-- @include"),
                "{file}: include left unexpanded"
            );
            assert!(
                src.contains("local function now_ms()"),
                "{file}: common helpers present"
            );
        }
    }

    #[test]
    fn every_lua_file_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
        let registered: Vec<_> = Scripts::sources().into_iter().map(|(f, _)| f).collect();
        for entry in std::fs::read_dir(dir).expect("lua/ exists") {
            let name = entry.expect("dir entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".lua") {
                assert!(
                    registered.contains(&name.as_ref()),
                    "lua/{name} is not registered"
                );
            }
        }
    }
}
