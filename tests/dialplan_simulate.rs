//! The shipped dialplans (`dialplans/`, prompts in `prompts/`): walks every example line with
//! `hotline simulate` and checks the tags it sets and where the call ends. The table is the one in
//! `dialplans/README.md`; change both together.

use std::process::Command;

/// Monday, inside office hours.
const WORKDAY: &str = "2026-10-12 10:00";
/// 国庆节: a holiday of the example calendar cn-2026 (office-hours closed).
const HOLIDAY: &str = "2026-10-01 10:00";
/// Saturday worked (调休) in cn-2026: open with Monday's hours.
const MAKEUP_DAY: &str = "2026-10-10 10:00";
/// An ordinary Sunday.
const SUNDAY: &str = "2026-10-11 10:00";

/// A priority caller of `dialplans/lists/priority-callers.txt`.
const PRIORITY_CALLER: &str = "13800000001";

struct Case {
    to: &'static str,
    /// `-` presses nothing (silence until the timeout).
    keys: &'static str,
    at: &'static str,
    from: Option<&'static str>,
    /// `NAME=VALUE` of tags that must be set.
    tags: &'static [&'static str],
    /// The last line of the output.
    ends: &'static str,
}

const fn case(
    to: &'static str,
    keys: &'static str,
    at: &'static str,
    tags: &'static [&'static str],
    ends: &'static str,
) -> Case {
    Case {
        to,
        keys,
        at,
        from: None,
        tags,
        ends,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // 12345 (unified)
    case("12345", "1,1", WORKDAY, &["topic=pension"], "ends: queue social-security (priority 0)"),
    case("12345", "1,1", HOLIDAY, &["topic=pension"], "ends: queue general (priority 0)"),
    case("12345", "1,1", MAKEUP_DAY, &["topic=pension"], "ends: queue social-security (priority 0)"),
    case("12345", "1,1", SUNDAY, &["topic=pension"], "ends: queue general (priority 0)"),
    case("12345", "9,2,2", WORKDAY, &["topic=real-estate"], "ends: queue natural-resources (priority 0)"),
    case("12345", "2,4", WORKDAY, &["topic=transport"], "ends: queue transport (priority 0)"),
    case("12345", "3", WORKDAY, &["topic=consumer"], "ends: queue market (priority 0)"),
    case("12345", "4,4", WORKDAY, &["topic=tax"], "ends: transfer tax"),
    case("12345", "0", WORKDAY, &[], "ends: queue general (priority 0)"),
    case("12345", "-", WORKDAY, &[], "ends: queue general (priority 0)"),
    case("12345", "7,7,7", WORKDAY, &[], "ends: queue general (priority 0)"),
    case("+8612345", "0", WORKDAY, &[], "ends: queue general (priority 0)"),
    Case {
        from: Some(PRIORITY_CALLER),
        ..case("12345", "-", WORKDAY, &["lane=elderly-priority"], "ends: queue general (priority 5)")
    },
    // Retired lines (整体并入)
    case("12336", "2", WORKDAY, &["topic=land-resources", "topic=real-estate"], "ends: queue natural-resources (priority 0)"),
    case("12316", "-", WORKDAY, &["topic=agriculture"], "ends: queue agriculture (priority 0)"),
    case("12317", "-", WORKDAY, &["topic=rural-revitalisation"], "ends: queue agriculture (priority 0)"),
    case("12338", "-", WORKDAY, &["topic=women-rights"], "ends: queue legal (priority 0)"),
    case("12348", "-", WORKDAY, &["topic=legal-aid"], "ends: queue legal (priority 0)"),
    case("12348", "-", HOLIDAY, &["topic=legal-aid"], "ends: queue general (priority 0)"),
    // Dual lines (双号并行)
    case("12333", "1,123456789012345678", WORKDAY, &["topic=social-insurance", "id-number=123456789012345678"], "ends: queue social-security (priority 0)"),
    case("12333", "1,110101900101123#", WORKDAY, &["id-number=110101900101123"], "ends: queue social-security (priority 0)"),
    case("12333", "9,2", WORKDAY, &["topic=employment"], "ends: queue social-security (priority 0)"),
    case("12333", "3", WORKDAY, &[], "ends: queue social-security-experts (priority 0)"),
    case("12333", "0", WORKDAY, &[], "ends: queue social-security (priority 0)"),
    case("12333", "-", WORKDAY, &[], "ends: queue social-security (priority 0)"),
    case("12315", "1", WORKDAY, &["topic=consumer-complaint"], "ends: queue market (priority 0)"),
    case("12315", "3", WORKDAY, &[], "ends: queue market-experts (priority 0)"),
    case("12329", "1,12345678#", WORKDAY, &["topic=fund-account-query", "fund-account=12345678"], "ends: queue housing-fund (priority 0)"),
    case("12329", "2", WORKDAY, &["topic=fund-withdrawal-loan"], "ends: queue housing-fund (priority 0)"),
    case("12369", "2", WORKDAY, &["topic=noise"], "ends: queue environment (priority 0)"),
    case("12319", "1", WORKDAY, &["topic=water-gas"], "ends: queue urban-construction (priority 0)"),
    case("12319", "-", HOLIDAY, &[], "ends: queue general (priority 0)"),
    case("12320", "1", WORKDAY, &["topic=medical-service"], "ends: queue health (priority 0)"),
    case("12328", "2", WORKDAY, &["topic=public-transport"], "ends: queue transport (priority 0)"),
    case("12328", "3", WORKDAY, &[], "ends: queue transport-experts (priority 0)"),
    // Sub-centres (分中心) and a number nobody declared
    case("12366", "-", WORKDAY, &["topic=tax"], "ends: transfer tax"),
    case("12360", "-", WORKDAY, &["topic=customs"], "ends: transfer customs"),
    case("12399", "-", WORKDAY, &[], "ends: rejected 404"),
];

fn hotline(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run the hotline binary")
}

/// What is wrong with one case's walk, if anything.
fn check(c: &Case) -> Option<String> {
    let mut args = vec![
        "simulate",
        "--dialplans",
        "dialplans",
        "--prompts",
        "prompts",
        "--to",
        c.to,
        "--keys",
        c.keys,
        "--at",
        c.at,
    ];
    if let Some(from) = c.from {
        args.extend(["--from", from]);
    }
    let out = hotline(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut wrong = Vec::new();
    if !out.status.success() {
        wrong.push(format!("exit status {}", out.status));
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end();
    if last != c.ends {
        wrong.push(format!("last line {last:?}, expected {:?}", c.ends));
    }
    for tag in c.tags {
        let want = format!("tag {tag}");
        if !stdout.lines().any(|l| l.trim_end().ends_with(&want)) {
            wrong.push(format!("no line ending with {want:?}"));
        }
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "hotline {}: {}\n--- stdout\n{stdout}--- stderr\n{}",
            args.join(" "),
            wrong.join("; "),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn every_example_line_ends_where_the_readme_says() {
    let failures: Vec<String> = CASES.iter().filter_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} walks wrong:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn shipped_dialplans_check_without_errors_or_warnings() {
    let out = hotline(&["check", "dialplans", "--prompts", "prompts"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "hotline check dialplans failed:\n{text}"
    );
    assert!(
        !text.contains("warning:"),
        "hotline check dialplans warns:\n{text}"
    );
}

/// `hotline simulate` of the shipped set on a workday; its stdout.
fn walk(to: &str, keys: &str, from: &str) -> String {
    let args = [
        "simulate",
        "--dialplans",
        "dialplans",
        "--prompts",
        "prompts",
        "--to",
        to,
        "--keys",
        keys,
        "--at",
        WORKDAY,
        "--from",
        from,
    ];
    let out = hotline(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "hotline {}: {}\n{stdout}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_caller_who_waits_too_long_is_offered_a_callback() {
    // Confirms their own number.
    let out = walk("12345", "0,wait,1", "13912345678");
    assert!(out.contains("no seat answers; loops queue/music"), "{out}");
    assert!(out.contains("enter offer-callback"), "{out}");
    let confirmed = "callback requested to 13912345678 (in the call record)";
    assert!(out.contains(confirmed), "{out}");
    assert!(out.contains("enter callback-thanks"), "{out}");
    assert!(out.trim_end().ends_with("ends: hangup"), "{out}");

    // Types another number, which is read back and confirmed.
    let out = walk("12333", "0,wait,2,13800000000#,1", "13912345678");
    assert!(out.contains("play queue/callback-enter"), "{out}");
    assert!(
        out.contains("play queue/callback-entered + numbers/1-yao"),
        "{out}"
    );
    assert!(out.contains("callback requested to 13800000000"), "{out}");
    assert!(out.trim_end().ends_with("ends: hangup"), "{out}");

    // Says nothing: no callback, goodbye.
    let out = walk("12333", "0,wait", "13912345678");
    assert!(!out.contains("callback requested"), "{out}");
    assert!(out.contains("enter goodbye"), "{out}");
    assert!(out.trim_end().ends_with("ends: hangup"), "{out}");
}
