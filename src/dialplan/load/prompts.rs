//! Prompt names and loading the prompts a dialplan plays.

use std::collections::BTreeMap;
use std::io::BufReader;

use super::spans::{Diags, Pos};
use super::PromptSource;
use crate::media::prompt::{Prompt, PromptError, PromptStore};

/// What a prompt file must be, in messages.
const EXPECTED_WAV: &str = "8 or 16 kHz mono 16-bit PCM";

/// Whether `name` is a prompt name: `[a-z0-9_-]+` parts separated by `/`.
pub(super) fn is_prompt_name(name: &str) -> bool {
    name.split('/').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    })
}

/// Loads every referenced prompt once; reports a missing or unusable file at each reference.
pub(super) fn load(refs: &[(String, Pos)], source: PromptSource<'_>, d: &mut Diags) -> PromptStore {
    let mut store = PromptStore::new();
    let PromptSource::Dir(dir) = source else {
        return store;
    };
    let mut problems: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for (name, pos) in refs {
        let problem = problems.entry(name.as_str()).or_insert_with(|| {
            let path = dir.join(format!("{name}.wav"));
            let shown = path.display();
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Some(format!("{shown} does not exist"));
                }
                Err(e) => return Some(format!("{shown} cannot be read: {e}")),
            };
            match Prompt::from_wav(name, BufReader::new(file), &path) {
                Ok(prompt) => {
                    store.insert(prompt);
                    None
                }
                Err(e) => Some(format!(
                    "{shown} is not a usable WAV: {}; expected {EXPECTED_WAV}",
                    reason(&e)
                )),
            }
        });
        if let Some(problem) = problem {
            d.error(pos, format!("prompt `{name}`: {problem}"));
        }
    }
    store
}

/// What is wrong with a WAV file, without its path.
fn reason(e: &PromptError) -> String {
    match e {
        PromptError::Open { source, .. } => source.to_string(),
        PromptError::Format { found, .. } => format!("found {found}"),
        PromptError::Data { source, .. } => format!("corrupt sample data ({source})"),
        PromptError::Empty { .. } => "it contains no audio".to_string(),
        other => other.to_string(),
    }
}
