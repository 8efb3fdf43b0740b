//! Tests of the seats file loader and the seat book's lookups.

use std::path::Path;

use super::*;
use crate::dialplan::Severity;

const GOOD: &str = r#"
[seats.a1001]
name = "王芳"
username = "1001"
password = "example-1001"
token = "example-token-a1001"
skills = { social-security = 5, housing-fund = 3 }
department = "社保局"
languages = ["mandarin", "cantonese"]

[seats.e2001]
name = "李强"
username = "2001"
ha1 = "0123456789ABCDEF0123456789abcdef"
token = "example-token-e2001"
skills = { social-security-expert = 5 }
expert = true
"#;

/// Parses `text` as `s.toml`, expecting errors; returns them (not the warnings) rendered.
fn errors(text: &str) -> Vec<String> {
    match parse(text, "s.toml") {
        Ok((book, _)) => panic!("expected errors, got {book:?}"),
        Err(list) => list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

/// Parses `text` as `s.toml`, expecting success.
fn loaded(text: &str) -> (SeatBook, Vec<String>) {
    match parse(text, "s.toml") {
        Ok((book, warnings)) => (book, warnings.iter().map(ToString::to_string).collect()),
        Err(list) => panic!("expected success, got {list:#?}"),
    }
}

/// A seat with every required key, for tests that vary one.
fn seat(id: &str, extra: &str) -> String {
    format!(
        "[seats.{id}]\nname = \"n\"\nusername = \"u-{id}\"\npassword = \"p\"\n\
         token = \"token-of-{id}-0123456789\"\nskills = {{ general = 1 }}\n{extra}"
    )
}

#[test]
fn a_good_file_loads_with_defaults_for_optional_keys() {
    let (book, warnings) = loaded(GOOD);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(book.len(), 2);
    let a = book.by_id("a1001").expect("a1001");
    assert_eq!(a.name, "王芳");
    assert_eq!(a.username, "1001");
    assert_eq!(a.secret, Secret::Password("example-1001".into()));
    assert_eq!(a.skill("social-security"), Some(5));
    assert_eq!(a.skill("housing-fund"), Some(3));
    assert_eq!(a.skill("legal"), None);
    assert!(!a.expert);
    assert_eq!(a.department, "社保局");
    assert_eq!(a.languages, vec!["mandarin", "cantonese"]);
    let e = book.by_username("2001").expect("2001");
    assert_eq!(e.id, "e2001");
    assert!(e.expert);
    assert_eq!(e.department, "");
    assert!(e.languages.is_empty());
    assert_eq!(
        e.secret,
        Secret::Ha1("0123456789abcdef0123456789abcdef".into()),
        "ha1 is kept in lower case"
    );
    assert_eq!(
        book.by_token("example-token-e2001").map(|s| s.id.as_str()),
        Some("e2001")
    );
    assert!(book.by_token("example-token-e2002").is_none());
    assert!(book.by_token("").is_none());
    assert!(book.by_username("1002").is_none());
}

#[test]
fn secrets_and_tokens_are_not_in_debug_output() {
    let (book, _) = loaded(GOOD);
    let shown = format!("{book:?}");
    assert!(!shown.contains("example-1001"), "{shown}");
    assert!(!shown.contains("example-token"), "{shown}");
    assert!(!shown.contains("0123456789"), "{shown}");
    assert!(shown.contains("王芳"));
}

#[test]
fn password_secret_gives_the_rfc_ha1() {
    let secret = Secret::Password("Circle Of Life".into());
    // md5("Mufasa:testrealm@host.com:Circle Of Life"), RFC 2617 §3.5.
    assert_eq!(
        secret.ha1("Mufasa", "testrealm@host.com"),
        "939e7578ed9e3c518a452acee763bce9"
    );
}

#[test]
fn every_problem_is_reported_at_its_place() {
    let text = "[seats.A1]\nname = \"n\"\nusername = \"u1\"\npassword = \"p\"\n\
                token = \"short\"\nskills = { general = 6, Bad = 1, legal = \"high\" }\n\
                expert = \"yes\"\nlanguages = [\"mandarin\", 5, \"Cantonese\"]\ncolour = 1\n";
    assert_eq!(
        errors(text),
        vec![
            "s.toml:1:8: error: seat id `A1` is not valid; expected lower-case letters, digits and `-`",
            "s.toml:5:9: error: `token` of seat `A1` must be at least 16 visible ASCII characters \
             without spaces (found 5 characters)",
            "s.toml:6:22: error: level of skill `general` must be from 1 (basic) to 5 (expert), found 6",
            "s.toml:6:25: error: skill name `Bad` is not valid; expected lower-case letters, digits and `-`",
            "s.toml:6:42: error: level of skill `legal` must be a whole number from 1 to 5, found a string",
            "s.toml:7:10: error: `expert` of seat `A1` must be true or false, found a string",
            "s.toml:8:26: error: item 2 of `languages` must be a string, found an integer",
            "s.toml:8:29: error: language `Cantonese` is not valid; expected lower-case letters, \
             digits and `-`, e.g. \"mandarin\"",
            "s.toml:9:1: error: unknown key `colour` in seat `A1`; expected one of: name, username, \
             password, ha1, token, skills, expert, department, languages",
        ]
    );
}

#[test]
fn required_keys_are_named_at_the_seat() {
    let e = errors("[seats.a1]\nexpert = true\nskills = { general = 1 }\n");
    assert_eq!(
        e,
        vec![
            "s.toml:1:8: error: seat `a1` has no `name`; expected the person's name, e.g. \"王芳\"",
            "s.toml:1:8: error: seat `a1` has no `username`; expected the SIP username of the \
             seat's phone, e.g. \"1001\"",
            "s.toml:1:8: error: seat `a1` has no `password`; expected the phone's digest \
             password, or `ha1` (md5 of username:realm:password in hex)",
            "s.toml:1:8: error: seat `a1` has no `token`; expected the bearer token of the \
             seat's desktop, at least 16 characters",
        ]
    );
}

#[test]
fn wrong_types_are_reported() {
    let e = errors(
        "[seats.a1]\nname = 1\nusername = 1001\npassword = \"p\"\n\
         token = \"0123456789abcdefg\"\nskills = [\"general\"]\n",
    );
    assert_eq!(
        e,
        vec![
            "s.toml:2:8: error: `name` of seat `a1` must be the person's name, e.g. \"王芳\", found an integer",
            "s.toml:3:12: error: `username` of seat `a1` must be the SIP username of the seat's \
             phone, e.g. \"1001\", found an integer",
            "s.toml:6:10: error: `skills` of seat `a1` must be a table of skills and levels \
             1..=5, e.g. { social-security = 5 }, found an array",
        ]
    );
    let e = errors("seats = 5\n");
    assert_eq!(
        e,
        vec!["s.toml:1:9: error: `seats` must be a table of seats ([seats.ID]), found an integer"]
    );
    let e = errors("[seats]\na1 = \"x\"\n");
    assert_eq!(
        e,
        vec!["s.toml:2:6: error: seat `a1` must be a table, found a string"]
    );
    let e = errors("[agents.a1]\nname = \"n\"\n");
    assert_eq!(
        e,
        vec![
            "s.toml:1:2: error: unknown key `agents` at top level; expected only [seats.ID] tables"
        ]
    );
}

#[test]
fn secrets_password_xor_ha1() {
    let both = "[seats.a1]\nname = \"n\"\nusername = \"1\"\npassword = \"p\"\n\
                ha1 = \"0123456789abcdef0123456789abcdef\"\ntoken = \"0123456789abcdefg\"\n";
    assert_eq!(
        errors(both),
        vec!["s.toml:5:1: error: seat `a1` has both `password` and `ha1`; keep one of them"]
    );
    let bad_ha1 = "[seats.a1]\nname = \"n\"\nusername = \"1\"\nha1 = \"xyz\"\n\
                   token = \"0123456789abcdefg\"\n";
    assert_eq!(
        errors(bad_ha1),
        vec![
            "s.toml:4:7: error: `ha1` of seat `a1` must be 32 hex digits (md5 of \
             username:realm:password)"
        ]
    );
    let empty = "[seats.a1]\nname = \"n\"\nusername = \"1\"\npassword = \"\"\n\
                 token = \"0123456789abcdefg\"\n";
    assert_eq!(
        errors(empty),
        vec!["s.toml:4:12: error: `password` of seat `a1` must not be empty"]
    );
    let username = "[seats.a1]\nname = \"n\"\nusername = \"10 01\"\npassword = \"p\"\n\
                    token = \"0123456789abcdefg\"\n";
    assert_eq!(
        errors(username),
        vec![
            "s.toml:3:12: error: `username` of seat `a1` must be letters, digits, `.`, `_`, \
             `-` and `+`, found \"10 01\""
        ]
    );
    let token = "[seats.a1]\nname = \"n\"\nusername = \"1\"\npassword = \"p\"\n\
                 token = \"0123456789 abcdefg\"\n";
    assert!(errors(token)[0].starts_with("s.toml:5:9: error: `token` of seat `a1` must be"));
}

#[test]
fn usernames_and_tokens_are_unique() {
    let text = format!(
        "{}{}{}",
        seat("a1", ""),
        seat("a2", "").replace("u-a2", "u-a1"),
        seat("a3", "").replace("token-of-a3", "token-of-a1"),
    );
    assert_eq!(
        errors(&text),
        vec![
            "s.toml:9:12: error: seat `a2` has the same username \"u-a1\" as seat `a1` \
             (at s.toml:3:12); each seat needs its own",
            "s.toml:17:9: error: seat `a3` has the same token as seat `a1` (at s.toml:5:9); \
             each seat needs its own",
        ]
    );
}

#[test]
fn warnings_do_not_stop_the_load() {
    let (book, warnings) = loaded("# no seats yet\n");
    assert!(book.is_empty());
    assert_eq!(
        warnings,
        vec!["s.toml:1:1: warning: no [seats.ID] table; the engine runs without seats"]
    );
    let (_, warnings) = loaded("[seats]\n");
    assert_eq!(
        warnings,
        vec!["s.toml:1:1: warning: no seat is declared; the engine runs without seats"]
    );
    let text = seat("a1", "").replace("skills = { general = 1 }\n", "");
    let (book, warnings) = loaded(&text);
    assert_eq!(book.len(), 1);
    assert_eq!(
        warnings,
        vec!["s.toml:1:8: warning: seat `a1` has no `skills`; it will be offered no queue's calls"]
    );
}

#[test]
fn syntax_errors_are_located() {
    let e = errors("[seats.a1]\nname = \"n\nusername = \"1\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("s.toml:2:"), "{}", e[0]);
    assert!(e[0].contains("error: TOML syntax error"), "{}", e[0]);
}

#[test]
fn byte_order_mark_and_crlf_are_accepted() {
    let text = format!("\u{feff}{}", seat("a1", "").replace('\n', "\r\n"));
    let (book, warnings) = loaded(&text);
    assert_eq!(book.len(), 1);
    assert!(warnings.is_empty());
    let e = errors(&format!(
        "\u{feff}{}",
        seat("a1", "x = 1").replace('\n', "\r\n")
    ));
    assert!(
        e[0].starts_with("s.toml:7:1: error: unknown key `x`"),
        "{}",
        e[0]
    );
}

#[test]
fn a_missing_file_is_an_empty_book_and_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seats.toml");
    let (book, warnings) = load(&path).expect("loads");
    assert!(book.is_empty());
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(warnings[0].message.contains("does not exist"));
    std::fs::write(&path, b"[seats.a1]\nname = \"\xff\"\n").expect("write");
    let e = load(&path).expect_err("not UTF-8");
    assert_eq!((e[0].line, e[0].column), (2, 9));
    assert!(e[0].message.contains("not UTF-8"));
}

#[test]
fn the_shipped_seats_file_covers_the_dialplan_skills() {
    let (book, warnings) = load(Path::new("seats.toml")).expect("seats.toml loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(book.len() >= 6);
    assert!(book.seats.iter().filter(|s| s.expert).count() >= 2);
    for entry in std::fs::read_dir("dialplans").expect("dialplans") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("dialplan text");
        for line in text.lines() {
            let Some(skill) = line.trim().strip_prefix("skill = \"") else {
                continue;
            };
            let skill = skill.split('"').next().unwrap_or_default();
            assert!(
                book.seats.iter().any(|s| s.skill(skill).is_some()),
                "no seat in seats.toml has skill `{skill}` of {}",
                path.display()
            );
        }
    }
}
