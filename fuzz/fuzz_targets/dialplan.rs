//! Arbitrary bytes as a dialplan file beside the shipped shared definitions: the loader must
//! answer with a located diagnostic or a plan, and never panic.
#![no_main]

use std::path::Path;

use hotline::dialplan::load::{load_files, PromptSource, SourceFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = [
        SourceFile {
            name: "shared.toml".into(),
            text: include_str!("../../dialplans/shared.toml").into(),
        },
        SourceFile {
            name: "fuzz.toml".into(),
            text: text.into(),
        },
    ];
    if let Err(problems) = load_files(&files, Path::new("."), PromptSource::Unchecked) {
        for problem in problems {
            assert!(problem.line >= 1 && problem.column >= 1, "{problem}");
        }
    }
});
