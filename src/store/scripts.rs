//! The Lua scripts in `lua/`, embedded at compile time, with `-- @include name.lua` lines
//! replaced by the files in `lua/includes/` (recursively, each file once, dependencies first).
//! Only the shared definitions a script uses are pasted: Redis runs a script's whole text on
//! every call, and each `local function` it passes builds a closure, so a helper no script
//! line reaches would cost every call for nothing (see [`shake`]).
//! The same transitions are also built into one library of Redis functions ([`Library`]:
//! helpers defined once, `FCALL` by name), which is how they run on Redis 7 and later; a
//! Redis that lacks the library (restarted, failed over, `FUNCTION FLUSH`) is given it again
//! by the first call that misses it. On an older Redis each script is called by SHA
//! (EVALSHA), and the `redis` crate loads it again on NOSCRIPT. Either way a flush or a
//! restart never breaks a running process.
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

/// The first statement of every transition (keys.lua): the centre, the clock, the keys.
const BEGIN: &str = "begin(KEYS)";

fn include_source(name: &str) -> Option<&'static str> {
    INCLUDES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// One line of an expanded script: the script's own, or one pasted from an include.
enum Line<'a> {
    Own(&'a str),
    Shared(&'a str),
}

/// Expand `source`'s include lines into `out`, depth first, skipping files already in `done`.
/// An unknown include is a bug in `lua/` caught by the tests below, so it panics.
fn expand_into<'a>(
    name: &str,
    source: &'a str,
    own: bool,
    done: &mut Vec<&'a str>,
    out: &mut Vec<Line<'a>>,
) {
    for line in source.lines() {
        match line.trim().strip_prefix(INCLUDE_PREFIX) {
            Some(inc) => {
                let inc = inc.trim();
                if done.contains(&inc) {
                    continue;
                }
                let body = include_source(inc)
                    .unwrap_or_else(|| panic!("lua/{name}: unknown include {inc}"));
                done.push(inc);
                expand_into(inc, body, false, done, out);
                if own {
                    // the script's own code starts once the shared code is in place
                    out.push(Line::Own(BEGIN));
                }
            }
            None if own => out.push(Line::Own(line)),
            None => out.push(Line::Shared(line)),
        }
    }
}

/// A top-level definition of the shared code: `local function name(...) ... end` or
/// `local name = ...` (with any lines continuing it), with the comments just above it.
struct Item {
    /// The local it defines, or None (comments only): always kept.
    defines: Option<String>,
    /// Its index range in the expanded lines.
    lines: std::ops::Range<usize>,
}

/// The name a top-level `local` line defines, and whether it opens a function body that
/// runs to a line `end` (a one-line `local function f() ... end` does not).
fn defined_local(line: &str) -> Option<(String, bool)> {
    let rest = line.strip_prefix("local ")?;
    let (rest, function) = match rest.strip_prefix("function ") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let after = rest[name.len()..].trim_start();
    let well_formed = !name.is_empty()
        && if function {
            after.starts_with('(')
        } else {
            after.starts_with('=')
        };
    well_formed.then(|| {
        let opens_body = function && !line.trim_end().ends_with(" end");
        (name, opens_body)
    })
}

/// The shared lines of `lines` cut into items. A comment or blank line at column 0 starts
/// the comments of the next item; any other line that does not open a definition continues
/// the current one (an indented line, a closing bracket).
fn items(lines: &[Line<'_>]) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut comments_from: Option<usize> = None;
    let mut in_body = false;
    for (i, line) in lines.iter().enumerate() {
        let Line::Shared(text) = line else { continue };
        if in_body {
            if let Some(last) = out.last_mut() {
                last.lines.end = i + 1;
            }
            in_body = *text != "end";
            continue;
        }
        if let Some((name, opens_body)) = defined_local(text) {
            let start = comments_from.take().unwrap_or(i);
            out.push(Item {
                defines: Some(name),
                lines: start..i + 1,
            });
            in_body = opens_body;
        } else if text.trim().is_empty() || text.starts_with("--") {
            comments_from.get_or_insert(i);
        } else if text.starts_with("local ") {
            // several names at once (the call's state, set by `begin`): always kept
            let start = comments_from.take().unwrap_or(i);
            out.push(Item {
                defines: None,
                lines: start..i + 1,
            });
        } else if let (Some(last), None) = (out.last_mut(), comments_from) {
            last.lines.end = i + 1;
        } else {
            // code that defines nothing: kept whatever uses it
            let start = comments_from.take().unwrap_or(i);
            out.push(Item {
                defines: None,
                lines: start..i + 1,
            });
        }
    }
    if let Some(start) = comments_from {
        out.push(Item {
            defines: None,
            lines: start..lines.len(),
        });
    }
    out
}

/// Every identifier-like word of `text` outside its whole-line comments (strings and
/// trailing comments included: a word seen there can only keep a definition that is not
/// needed, never drop one that is; no script has a long string that a line could open).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
}

/// Drop the shared definitions nothing reaches: start from the script's own lines and the
/// shared code that defines nothing, keep each definition whose name they use, then what
/// those use, and so on. Order is kept, so each kept definition still follows what it uses.
fn shake(lines: &[Line<'_>]) -> String {
    let items = items(lines);
    let text = |r: &std::ops::Range<usize>| {
        lines[r.clone()]
            .iter()
            .map(|l| match l {
                Line::Own(t) | Line::Shared(t) => *t,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut todo: Vec<String> = Vec::new();
    let reach = |t: &str, used: &mut std::collections::HashSet<String>, todo: &mut Vec<String>| {
        for w in words(t) {
            if used.insert(w.to_string()) {
                todo.push(w.to_string());
            }
        }
    };
    for line in lines {
        if let Line::Own(t) = line {
            reach(t, &mut used, &mut todo);
        }
    }
    for item in items.iter().filter(|i| i.defines.is_none()) {
        reach(&text(&item.lines), &mut used, &mut todo);
    }
    while let Some(w) = todo.pop() {
        for item in items
            .iter()
            .filter(|i| i.defines.as_deref() == Some(w.as_str()))
        {
            reach(&text(&item.lines), &mut used, &mut todo);
        }
    }
    let mut keep = vec![true; lines.len()];
    for item in &items {
        if let Some(name) = &item.defines {
            if !used.contains(name) {
                keep[item.lines.clone()].iter_mut().for_each(|k| *k = false);
            }
        }
    }
    let mut out = String::with_capacity(lines.len() * 40);
    for (line, keep) in lines.iter().zip(keep) {
        if keep {
            let (Line::Own(t) | Line::Shared(t)) = line;
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

/// The script `name` with its includes expanded and shaken.
fn expand(name: &str, source: &str) -> String {
    let mut lines = Vec::new();
    expand_into(name, source, true, &mut Vec::new(), &mut lines);
    shake(&lines)
}

/// The routing scripts as one library of Redis functions (`FUNCTION LOAD`, `FCALL`): the
/// shared code of `lua/includes/` defined once when the library loads instead of on every
/// call, and each `lua/<name>.lua` the body of function `<prefix><name>`. The library and
/// its functions are named after a hash of their text, so processes of two versions of
/// callq sharing a Redis (a rolling upgrade) each call their own code.
pub struct Library {
    /// The library's name, `callq_<hash>`.
    pub name: String,
    /// What each function's name starts with, `callq_<hash>_`.
    pub prefix: String,
    /// The text for `FUNCTION LOAD`.
    pub source: String,
}

/// FNV-1a, 64 bits: a version stamp for the library's text (not a security boundary).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The library of the transitions `bodies` ((name, `lua/<name>.lua`)).
fn library_of(bodies: &[(&str, &str)]) -> Library {
    let mut texts: Vec<&str> = INCLUDES.iter().map(|(_, b)| *b).collect();
    texts.extend(bodies.iter().map(|(_, b)| *b));
    let name = format!("callq_{:012x}", fnv1a(&texts) >> 16);
    let prefix = format!("{name}_");
    let mut lines = Vec::new();
    let mut done = Vec::new();
    for (inc, body) in INCLUDES {
        if !done.contains(inc) {
            done.push(*inc);
            expand_into(inc, body, false, &mut done, &mut lines);
        }
    }
    let mut source = format!("#!lua name={name}\n");
    for line in &lines {
        let (Line::Own(t) | Line::Shared(t)) = line;
        source.push_str(t);
        source.push('\n');
    }
    for (script, body) in bodies {
        source.push_str(&format!(
            "\nredis.register_function('{prefix}{script}', function(KEYS, ARGV)\n{BEGIN}\n"
        ));
        for line in body.lines() {
            if !line.trim().starts_with(INCLUDE_PREFIX) {
                source.push_str(line);
                source.push('\n');
            }
        }
        source.push_str("end)\n");
    }
    Library {
        name,
        prefix,
        source,
    }
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

            /// Every script as one library of Redis functions.
            pub fn library() -> Library {
                library_of(&[$((
                    stringify!($field),
                    include_str!(concat!("../../lua/", stringify!($field), ".lua")),
                )),*])
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
    transfer_connected,
    restore_connected,
    reenter,
    end_call,
    record,
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
            assert_eq!(
                src.matches("local function begin(keys)").count(),
                1,
                "{file}: the key helpers are pasted, once"
            );
            assert_eq!(
                src.matches("\nbegin(KEYS)\n").count(),
                1,
                "{file}: begins once"
            );
        }
    }

    #[test]
    fn includes_come_before_what_uses_them() {
        let src = expand(
            "t.lua",
            "-- t: x\n-- @include calls.lua\nlocal z = { call_requeue, agent_release }\n",
        );
        let pos = |needle: &str| {
            src.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(pos("local function begin(keys)") < pos("local function wake(at)"));
        assert!(pos("local function wake(at)") < pos("local function agent_release("));
        assert!(pos("local function agent_release(") < pos("local function call_requeue("));
        assert!(pos("local function call_requeue(") < pos("local z = "));
    }

    #[test]
    fn only_the_definitions_a_script_reaches_are_pasted() {
        let src = expand("t.lua", "-- t: x\n-- @include calls.lua\nwake()\n");
        // wake and what it uses (the wake key, the cap, the clock), with their comments
        for kept in [
            "local function wake(at)",
            "local WAKE_CAP = ",
            "local function begin(keys)",
            "local function now_ms()",
            "local P, NOW, NOW_S, NOW_US, RUN = nil, nil, nil, nil, 0",
            "-- Wake one waiting worker",
        ] {
            assert!(src.contains(kept), "{kept} kept:\n{src}");
        }
        for dropped in [
            "local function agent_release(",
            "local function call_requeue(",
            "local function event(",
            "local function hgetall(",
            "-- Append a transition",
        ] {
            assert!(!src.contains(dropped), "{dropped} dropped:\n{src}");
        }
        // a one-line function does not swallow the definitions after it
        let src = expand(
            "t.lua",
            "-- t: x\n-- @include keys.lua\nlocal x = k_alive('a')\n",
        );
        assert!(src.contains("local function k_alive(a)"));
        assert!(!src.contains("local function k_agent(a)"));
        assert!(!src.contains("local function hgetall("));
    }

    #[test]
    fn the_library_defines_every_transition_once_after_the_shared_code() {
        let lib = Scripts::library();
        assert!(lib
            .source
            .starts_with(&format!("#!lua name={}\n", lib.name)));
        assert_eq!(lib.prefix, format!("{}_", lib.name));
        let shared_end = lib
            .source
            .find("redis.register_function(")
            .expect("functions");
        assert!(lib.source[..shared_end].contains("local function call_requeue("));
        for (file, _) in Scripts::sources() {
            let name = file.trim_end_matches(".lua");
            let head = format!(
                "redis.register_function('{}{name}', function(KEYS, ARGV)\n{BEGIN}\n",
                lib.prefix
            );
            assert_eq!(lib.source.matches(&head).count(), 1, "{file}");
        }
        assert!(!lib.source.contains(INCLUDE_PREFIX));
        // another text, another name
        let other = library_of(&[("t", "-- t: x\nreturn 1\n")]);
        assert_ne!(other.name, lib.name);
    }

    #[test]
    fn every_shared_definition_is_recognised() {
        // each top-level `local` line of an include is an item of its own (a miscut item
        // would paste or drop code that is not a whole definition)
        for (name, body) in INCLUDES {
            let lines: Vec<Line<'_>> = body.lines().map(Line::Shared).collect();
            let firsts: Vec<usize> = items(&lines)
                .into_iter()
                .filter_map(|i| {
                    i.lines.clone().find(|&n| {
                        let (Line::Own(t) | Line::Shared(t)) = lines[n];
                        !(t.trim().is_empty() || t.starts_with("--"))
                    })
                })
                .collect();
            let locals: Vec<usize> = body
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with("local "))
                .map(|(n, _)| n)
                .collect();
            assert_eq!(firsts, locals, "lua/includes/{name}");
        }
    }

    /// The arguments of every `redis.call(...)` in `src` (whole-line comments skipped), as
    /// written: split at the call's own commas, outside strings and brackets.
    fn call_arguments(src: &str) -> Vec<Vec<String>> {
        let code: String = src
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut calls = Vec::new();
        for (at, _) in code.match_indices("redis.call(") {
            let mut args = vec![String::new()];
            let (mut depth, mut quote) = (0usize, None::<char>);
            for ch in code[at + "redis.call(".len()..].chars() {
                match (quote, ch) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '\'' | '"') => quote = Some(ch),
                    (None, '(' | '{' | '[') => depth += 1,
                    (None, ')') if depth == 0 => break,
                    (None, ')' | '}' | ']') => depth -= 1,
                    (None, ',') if depth == 0 => {
                        args.push(String::new());
                        continue;
                    }
                    _ => {}
                }
                if let Some(last) = args.last_mut() {
                    last.push(ch);
                }
            }
            calls.push(args.into_iter().map(|a| a.trim().to_owned()).collect());
        }
        calls
    }

    #[test]
    fn no_script_hands_redis_a_number_literal() {
        // a Lua number given to redis.call is formatted with "%.17g" on every call, several
        // times the cost of passing the digits as a string (keys.lua)
        let mut texts: Vec<(String, &str)> = INCLUDES
            .iter()
            .map(|(n, b)| (format!("includes/{n}"), *b))
            .collect();
        let bodies = Scripts::sources();
        texts.extend(bodies.iter().map(|(n, b)| ((*n).to_owned(), b.as_str())));
        let mut seen = 0;
        for (file, src) in texts {
            for args in call_arguments(src) {
                seen += 1;
                for arg in &args {
                    assert!(
                        arg.trim_start_matches('-').parse::<f64>().is_err(),
                        "lua/{file}: redis.call({}) passes the number {arg}; write it as a string",
                        args.join(", ")
                    );
                }
            }
        }
        assert!(seen > 100, "found {seen} calls");
        let caught = call_arguments("redis.call('LTRIM', k('a', 1), 0, f(x))\n");
        assert_eq!(caught, vec![vec!["'LTRIM'", "k('a', 1)", "0", "f(x)"]]);
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
