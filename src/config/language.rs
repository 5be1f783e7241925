//! The languages callq speaks to callers: a queue's (or the menu's) `language` is a BCP 47
//! tag for Twilio's `<Say language>`, and its primary subtag picks callq's own phrases
//! (`webhooks::speech`).

/// A language callq has phrases for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    /// The languages callq speaks, for messages.
    pub const SPOKEN: &'static str = "English (en-…) and Spanish (es-…)";

    /// The language of a BCP 47 tag (`en`, `en-GB`, `es-419`, …): its primary subtag.
    pub fn of(tag: &str) -> Option<Lang> {
        let tag = tag.trim();
        let valid = !tag.is_empty()
            && tag.len() <= 35
            && tag.split('-').all(|p| {
                !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !valid {
            return None;
        }
        match tag.split('-').next()?.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_its_language() {
        assert_eq!(Lang::of("en-US"), Some(Lang::En));
        assert_eq!(Lang::of("en"), Some(Lang::En));
        assert_eq!(Lang::of("ES-mx"), Some(Lang::Es));
        assert_eq!(Lang::of("es-419"), Some(Lang::Es));
        assert_eq!(Lang::of("fr-FR"), None);
        assert_eq!(Lang::of(""), None);
        assert_eq!(Lang::of("en_US"), None);
        assert_eq!(Lang::of("en--US"), None);
        assert_eq!(Lang::of("es-ES\"><Hangup/>"), None);
    }
}
