//! Mutated dialplan files against the loader, on stable Rust inside the test command (the
//! libFuzzer target in `fuzz/` goes further with nightly): every input gets either a plan or
//! diagnostics that point inside the file, and nothing panics.

mod support;

use std::path::Path;

use hotline::dialplan::load::{load_files, PromptSource, SourceFile};
use support::XorShift;

/// Fragments that make mutations land on TOML and dialplan structure, not just noise.
const FRAGMENTS: &[&str] = &[
    "[nodes.x]\n",
    "goto = \"x\"\n",
    "[[numbers]]\n",
    "menu = [",
    "]",
    "{",
    "}",
    "=",
    "\"",
    "\n",
    "#",
    "keys = { \"1\" = \"x\" }\n",
    "0",
    "-1",
    "99999999999999999999",
    "..",
    "24:00",
    "mon-sun 22:00-06:00",
    "中文",
    "\u{0}",
    "'''",
    "[defaults]\n",
    "true",
    "1e9",
    ",",
];

fn mutate(text: &str, rng: &mut XorShift) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.next() % 4 {
        let at = (rng.next() as usize) % (bytes.len() + 1);
        match rng.next() % 4 {
            0 => {
                let end = (at + (rng.next() as usize) % 40).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                let fragment = FRAGMENTS[(rng.next() as usize) % FRAGMENTS.len()];
                bytes.splice(at..at, fragment.bytes());
            }
            2 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_dialplans_get_located_errors_and_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let mut originals: Vec<SourceFile> = std::fs::read_dir(&dir)
        .expect("the shipped dialplans")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|path| SourceFile {
            name: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
            text: std::fs::read_to_string(&path).expect("a readable dialplan"),
        })
        .collect();
    originals.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(originals.len() >= 2);
    let mut rng = XorShift(0x5eed_d1a1);
    let mut refused = 0;
    for round in 0..3000 {
        let victim = round % originals.len();
        let mut files = originals.clone();
        files[victim].text = mutate(&files[victim].text, &mut rng);
        let Err(problems) = load_files(&files, &dir, PromptSource::Unchecked) else {
            continue;
        };
        refused += 1;
        assert!(!problems.is_empty(), "refused without a reason");
        for problem in &problems {
            let Some(file) = files.iter().find(|f| f.name == problem.file) else {
                // Problems in list files are located in those files.
                assert!(problem.file.ends_with(".txt"), "unknown file in {problem}");
                continue;
            };
            let lines = file.text.split('\n').count();
            assert!(
                problem.line >= 1 && problem.line <= lines && problem.column >= 1,
                "{problem} points outside {} ({lines} lines)",
                file.name
            );
        }
    }
    assert!(
        refused > 1000,
        "the mutations should break most files: {refused}"
    );
}
