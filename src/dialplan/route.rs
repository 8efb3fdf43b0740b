//! Which declared number a call is for: the number plan's lookup.

use super::model::{Dialplan, MatchOn, UnknownTreatment};

/// Where the number plan sends a new call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    /// The entry at this index of [`Dialplan::numbers`], and the number as dialled.
    Number {
        /// Index in `numbers`.
        entry: usize,
        /// The dialled number after stripping.
        dialled: String,
    },
    /// No number matched: announce (early media) then refuse.
    Reject {
        /// Prompts for the announcement.
        prompts: Vec<String>,
        /// Final status.
        status: u16,
        /// The dialled number as read (for logs and records).
        dialled: String,
    },
}

impl Dialplan {
    /// Routes a call by the user parts of its Request-URI and To header.
    pub fn route(&self, request_uri: Option<&str>, to: Option<&str>) -> Routing {
        let mut first = None;
        for part in &self.numbering.match_on {
            let user = match part {
                MatchOn::RequestUri => request_uri,
                MatchOn::To => to,
            };
            let Some(user) = user else { continue };
            let dialled = self.strip(user);
            if let Some(entry) = self.lookup(dialled) {
                return Routing::Number {
                    entry,
                    dialled: dialled.to_string(),
                };
            }
            first.get_or_insert(dialled);
        }
        let dialled = first.unwrap_or_default().to_string();
        match &self.unknown {
            UnknownTreatment::Route(entry) => Routing::Number {
                entry: *entry,
                dialled,
            },
            UnknownTreatment::Reject { prompts, status } => Routing::Reject {
                prompts: prompts.clone(),
                status: *status,
                dialled,
            },
        }
    }

    /// The entry for a number: exact first, then the longest prefix.
    pub fn lookup(&self, number: &str) -> Option<usize> {
        if let Some(&entry) = self.exact.get(number) {
            return Some(entry);
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| number.starts_with(prefix.as_str()))
            .map(|&(_, entry)| entry)
    }

    fn strip<'a>(&self, number: &'a str) -> &'a str {
        self.numbering
            .strip
            .iter()
            .find_map(|prefix| number.strip_prefix(prefix.as_str()))
            .unwrap_or(number)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dialplan::load::{load_files, PromptSource, SourceFile};

    fn dialplan(extra: &str) -> Dialplan {
        let text = format!(
            r#"
[numbering]
match_on = ["request-uri", "to"]
strip = ["+86"]
{extra}

[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "bye"

[[numbers]]
prefix = "0376"
mode = "unified"
line = "local"
start = "bye"

[[numbers]]
prefix = "037612"
mode = "unified"
line = "longer"
start = "bye"

[[numbers]]
number = "0376123"
mode = "unified"
line = "exact"
start = "bye"

[nodes.bye]
hangup = []
"#
        );
        let file = SourceFile {
            name: "plan.toml".into(),
            text,
        };
        load_files(&[file], Path::new("."), PromptSource::Unchecked)
            .map(|loaded| loaded.dialplan)
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn line(plan: &Dialplan, uri: Option<&str>, to: Option<&str>) -> String {
        match plan.route(uri, to) {
            Routing::Number { entry, .. } => plan.numbers[entry].line.clone(),
            Routing::Reject { status, .. } => status.to_string(),
        }
    }

    #[test]
    fn exact_numbers_beat_prefixes_and_the_longest_prefix_wins() {
        let plan = dialplan("");
        assert_eq!(line(&plan, Some("12345"), None), "12345");
        assert_eq!(line(&plan, Some("+8612345"), None), "12345", "stripped");
        assert_eq!(line(&plan, Some("0376123"), None), "exact");
        assert_eq!(line(&plan, Some("03761299"), None), "longer");
        assert_eq!(line(&plan, Some("0376999"), None), "local");
        assert_eq!(line(&plan, Some("0377"), None), "404");
    }

    #[test]
    fn the_to_header_is_read_when_the_request_uri_matches_nothing() {
        let plan = dialplan("");
        assert_eq!(line(&plan, Some("trunk-gw"), Some("12345")), "12345");
        assert_eq!(line(&plan, None, Some("12345")), "12345");
        match plan.route(Some("trunk-gw"), Some("999")) {
            Routing::Reject { dialled, .. } => assert_eq!(dialled, "trunk-gw"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_numbers_can_be_routed_to_a_declared_number() {
        let plan = dialplan("[unknown]\naction = \"route\"\nroute_to = \"12345\"\n");
        assert_eq!(line(&plan, Some("110"), None), "12345");
    }
}
