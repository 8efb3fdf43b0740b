//! Loader tests: the set-wide sections, schedules, calendars, list files, sub-centres, the
//! number plan, prompt files and directories.

use std::path::Path;

use chrono::NaiveDate;

use super::tests::{errors, load_in, loads, MAIN, SHARED};
use super::{load_dir, load_files};
use crate::dialplan::model::{
    DialPattern, DialPatternError, Interval, MatchOn, QueueId, UnknownTreatment,
    DEFAULT_SUBCENTRE_RING,
};
use crate::dialplan::spoken::ANNOUNCEMENT_PROMPTS;

#[test]
fn shared_sections_are_checked() {
    let x = r#"[clock]
utc_offset = "8"

[numbering]
match_on = ["request-uri", "from"]
strip = [""]

[unknown]
action = "reject"
status = 700
route_to = "12345"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:2:14: error: `utc_offset` must be an offset \"+HH:MM\" or \"-HH:MM\", e.g. \
             \"+08:00\", found \"8\"",
            "dp/x.toml:5:28: error: `match_on` must name \"request-uri\" or \"to\", found \"from\"",
            "dp/x.toml:6:10: error: an empty prefix in `strip`; expected e.g. \"+86\"",
            "dp/x.toml:10:10: error: `status` must be a SIP status (400..=699), found 700",
            "dp/x.toml:11:1: error: `route_to` is only allowed with action = \"route\"",
        ]
    );
}

#[test]
fn shared_sections_have_built_in_defaults_and_are_read() {
    let plan = loads("").dialplan;
    assert_eq!(plan.utc_offset_s, 8 * 3600);
    assert_eq!(plan.numbering.match_on, [MatchOn::RequestUri]);
    assert!(plan.numbering.strip.is_empty());
    assert_eq!(
        plan.unknown,
        UnknownTreatment::Reject {
            prompts: Vec::new(),
            status: 404
        }
    );

    let x = "[clock]\nutc_offset = \"-05:30\"\n[numbering]\nmatch_on = [\"to\", \"request-uri\"]\n\
             strip = [\"+86\"]\n[unknown]\naction = \"route\"\nroute_to = \"12345\"\n";
    let plan = loads(x).dialplan;
    assert_eq!(plan.utc_offset_s, -(5 * 3600 + 30 * 60));
    assert_eq!(plan.numbering.match_on, [MatchOn::To, MatchOn::RequestUri]);
    assert_eq!(plan.numbering.strip, ["+86"]);
    assert_eq!(plan.unknown, UnknownTreatment::Route(0));

    let x = "[unknown]\nprompts = [\"common/unknown\"]\nstatus = 480\n";
    let plan = loads(x).dialplan;
    assert_eq!(
        plan.unknown,
        UnknownTreatment::Reject {
            prompts: vec!["common/unknown".into()],
            status: 480
        }
    );
}

#[test]
fn unknown_route_must_name_a_declared_exact_number() {
    let x = "[unknown]\naction = \"route\"\nroute_to = \"12399\"\nstatus = 404\n\n\
             [[numbers]]\nprefix = \"0376\"\nmode = \"dual\"\nline = \"x\"\nstart = \"busy\"\n\n\
             [unknown2]\n";
    let errs = errors(x);
    assert_eq!(
        errs[..2],
        [
            "dp/x.toml:3:12: error: `route_to` names 12399, which is not declared as an exact \
             number ([[numbers]] number = \"12399\")",
            "dp/x.toml:4:1: error: `status` is only allowed with action = \"reject\"",
        ]
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn schedules_are_checked() {
    let x = r#"[schedules.a]
always = true
hours = ["mon 08:00-09:00"]

[schedules.b]
always = false

[schedules.c]
hours = ["mon-fry 08:00-12:00", "mon 24:00-01:00", "mon 08:00-25:00", "mon 0800-1200", "weekdays"]
calendar = "cn"
"#;
    let hours = "\"DAYS HH:MM-HH:MM\", e.g. \"mon-fri 08:30-12:00\" or \"sat,sun 09:00-12:00\"";
    let time = "is not a time; expected HH:MM from 00:00 to 24:00";
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:3:1: error: `hours` is not allowed with `always = true`; expected one or \
             the other"
                .to_string(),
            format!(
                "dp/x.toml:5:12: error: [schedules.b] has no `hours`; expected a list of {hours}, \
                 or `always = true`"
            ),
            "dp/x.toml:9:10: error: hours \"mon-fry 08:00-12:00\": unknown day `fry`; expected \
             mon, tue, wed, thu, fri, sat or sun"
                .to_string(),
            "dp/x.toml:9:33: error: hours \"mon 24:00-01:00\": 24:00 is only allowed as an end time"
                .to_string(),
            format!("dp/x.toml:9:52: error: hours \"mon 08:00-25:00\": `25:00` {time}"),
            format!("dp/x.toml:9:71: error: hours \"mon 0800-1200\": `0800` {time}"),
            format!("dp/x.toml:9:88: error: hours \"weekdays\": expected {hours}"),
            "dp/x.toml:10:12: error: calendar `cn` is not declared in any [calendars.NAME]"
                .to_string(),
        ]
    );
}

#[test]
fn hours_and_calendars_are_read() {
    let x = r#"[calendars.cn]
holidays = ["2026-10-01..2026-10-03", "2026-01-01"]
workdays = ["2026-10-10"]

[schedules.night]
hours = ["sat,sun 22:00-06:00", "fri-mon 09:00-24:00", "mon-sun 08:00-08:00"]
calendar = "cn"

[schedules.all]
always = true
"#;
    let plan = loads(x).dialplan;
    let cn = &plan.calendars[0];
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    assert_eq!(
        cn.holidays.iter().copied().collect::<Vec<_>>(),
        [day(1, 1), day(10, 1), day(10, 2), day(10, 3)]
    );
    assert_eq!(
        cn.workdays.iter().copied().collect::<Vec<_>>(),
        [day(10, 10)]
    );
    let night = plan
        .schedules
        .iter()
        .find(|s| s.name == "night")
        .expect("night");
    assert!(!night.always);
    assert_eq!(night.calendar.map(|c| c.0), Some(0));
    let f = false;
    assert_eq!(
        night.hours,
        [
            Interval {
                days: [f, f, f, f, f, true, true],
                start_min: 22 * 60,
                end_min: 6 * 60
            },
            Interval {
                days: [true, f, f, f, true, true, true],
                start_min: 9 * 60,
                end_min: 24 * 60
            },
            Interval {
                days: [true; 7],
                start_min: 8 * 60,
                end_min: 8 * 60
            },
        ]
    );
    let all = plan
        .schedules
        .iter()
        .find(|s| s.name == "all")
        .expect("all");
    assert!(all.always && all.hours.is_empty() && all.calendar.is_none());
}

#[test]
fn calendars_are_checked() {
    let x = r#"[calendars.cn]
holidays = ["2026-02-30", "2026-02-22..2026-02-16", "2026-01-01..2026-01-03", "2026-1-1"]
workdays = ["2026-01-02"]
"#;
    let date = "is not a date; expected \"YYYY-MM-DD\" or \"YYYY-MM-DD..YYYY-MM-DD\"";
    assert_eq!(
        errors(x),
        [
            format!("dp/x.toml:2:13: error: \"2026-02-30\" {date}"),
            "dp/x.toml:2:27: error: the range \"2026-02-22..2026-02-16\" ends before it starts; \
             expected \"FIRST..LAST\""
                .to_string(),
            format!("dp/x.toml:2:79: error: \"2026-1-1\" {date}"),
            "dp/x.toml:3:12: error: 2026-01-02 is both a holiday and a workday; expected it in \
             one list only"
                .to_string(),
        ]
    );
}

#[test]
fn list_files_are_read_relative_to_the_base_and_errors_located_in_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = "# VIP callers\n13800000000\n\n  13900000000   # 王先生\n+8613700000000\n\
                1380abc\n138 139\n";
    std::fs::write(dir.path().join("vip.txt"), list).expect("write");
    let x = "[lists.vip]\nfile = \"vip.txt\"\n\n[lists.gone]\nfile = \"gone.txt\"\n";
    let files = [
        ("dp/12345.toml", MAIN),
        ("dp/shared.toml", SHARED),
        ("dp/x.toml", x),
    ];
    let errs = load_in(dir.path(), &files).unwrap_err();
    let shown = dir.path().display();
    assert_eq!(
        errs,
        [
            format!("{shown}/vip.txt:6:1: error: `1380abc` is not a phone number; expected digits, `+`, `*` or `#`"),
            format!("{shown}/vip.txt:7:5: error: unexpected `139`; expected one number per line (`#` starts a comment)"),
            format!("dp/x.toml:5:8: error: list `gone`: {shown}/gone.txt cannot be read: No such file or directory (os error 2)"),
        ]
    );

    std::fs::write(
        dir.path().join("vip.txt"),
        &list[..list.find("1380abc").expect("bad line")],
    )
    .expect("write");
    let x = "[lists.vip]\nfile = \"vip.txt\"\n";
    let files = [
        ("dp/12345.toml", MAIN),
        ("dp/shared.toml", SHARED),
        ("dp/x.toml", x),
    ];
    let plan = load_in(dir.path(), &files).expect("loads").dialplan;
    let mut numbers: Vec<&str> = plan.lists[0].numbers.iter().map(String::as_str).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["+8613700000000", "13800000000", "13900000000"]);
}

#[test]
fn subcentres_are_checked() {
    let x = r#"[subcentres.pbx]
trunk = "pbx.example:5060"
transport = "sctp"
number = "12-366"
always_open = false

[subcentres.p2]
trunk = "10.0.0.1:5060"
schedule = "office"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:1:13: error: [subcentres.pbx] has no `schedule`; expected the schedule of \
             its opening hours (with `always_open = false`)",
            "dp/x.toml:2:9: error: `trunk` must be the PBX's SIP address as IP:port, e.g. \
             \"10.0.0.5:5060\", found \"pbx.example:5060\"",
            "dp/x.toml:3:13: error: `transport` must be \"udp\" or \"tcp\", found \"sctp\"",
            "dp/x.toml:4:10: error: `number` must be the number sent to the trunk (digits, `+`, \
             `*`, `#`), found \"12-366\"",
            "dp/x.toml:9:1: error: `schedule` is only allowed with `always_open = false`",
        ]
    );
}

#[test]
fn subcentre_dial_out_ring_timeout_and_unanswered_are_checked() {
    let x = r#"[subcentres.pbx]
trunk = "10.0.0.1:5060"
dial_out = ["0571*", "05-71", "*", "05*71", "", "0571*", 571]
ring_timeout_s = 3
unanswered = "general"

[subcentres.p2]
trunk = "10.0.0.2:5060"
dial_out = "0571*"
ring_timeout_s = "20"
unanswered = "queue:nobody"
"#;
    let bad = |column: u32, pattern: &str, why: &str| {
        format!(
            "dp/x.toml:3:{column}: error: `dial_out` pattern \"{pattern}\": {why}; expected \
             digits, `?` for exactly one digit and a final `*` for any further digits, e.g. \
             \"0571*\""
        )
    };
    assert_eq!(
        errors(x),
        [
            bad(22, "05-71", "`-` is not allowed"),
            bad(31, "*", "`*` alone would allow every number"),
            bad(36, "05*71", "`*` is only allowed at the end"),
            bad(45, "", "it is empty"),
            "dp/x.toml:3:49: error: pattern \"0571*\" is named twice in `dial_out`".to_string(),
            "dp/x.toml:3:58: error: item 7 of `dial_out` must be a string, found an integer"
                .to_string(),
            "dp/x.toml:4:18: error: `ring_timeout_s` must be a number of seconds (5..=300), found 3"
                .to_string(),
            "dp/x.toml:5:14: error: `unanswered` must be \"queue:NAME\" with a declared queue, \
             found \"general\""
                .to_string(),
            "dp/x.toml:9:12: error: `dial_out` must be a list of number patterns, e.g. \
             [\"0571*\", \"1??????????\"], found a string"
                .to_string(),
            "dp/x.toml:10:18: error: `ring_timeout_s` must be a number of seconds (5..=300), \
             found a string"
                .to_string(),
            "dp/x.toml:11:14: error: queue `nobody` is not declared in any [queues.NAME]"
                .to_string(),
        ]
    );
}

#[test]
fn subcentre_dial_out_ring_timeout_and_unanswered_are_read() {
    let x = "[subcentres.pbx]\ntrunk = \"10.0.0.1:5060\"\n\
             dial_out = [\"0571*\", \"1??????????\"]\nring_timeout_s = 12\n\
             unanswered = \"queue:general\"\n";
    let plan = loads(x).dialplan;
    let pbx = plan.subcentres.iter().find(|s| s.name == "pbx").unwrap();
    let patterns: Vec<&str> = pbx.dial_out.iter().map(|p| p.as_str()).collect();
    assert_eq!(patterns, ["0571*", "1??????????"]);
    assert_eq!(pbx.ring_timeout, std::time::Duration::from_secs(12));
    assert_eq!(pbx.unanswered, Some(QueueId(0)));
    // Left out: no numbers, 30 s, back to the caller's own queue.
    let tax = plan.subcentres.iter().find(|s| s.name == "tax").unwrap();
    assert!(tax.dial_out.is_empty());
    assert_eq!(tax.ring_timeout, DEFAULT_SUBCENTRE_RING);
    assert_eq!(tax.unanswered, None);
}

#[test]
fn dial_out_patterns_match_whole_numbers() {
    let pattern = |text: &str| DialPattern::parse(text).expect("a pattern");
    let area = pattern("0571*");
    assert!(area.matches("0571"));
    assert!(area.matches("057187654321"));
    assert!(!area.matches("057287654321"));
    assert!(!area.matches("057"));
    let mobile = pattern("1??????????");
    assert!(mobile.matches("13800000000"));
    assert!(!mobile.matches("1380000000"), "one digit short");
    assert!(!mobile.matches("138000000001"), "one digit long");
    assert!(!mobile.matches("1380000000a"), "digits only");
    assert!(!pattern("12345").matches(""));
    assert_eq!(
        DialPattern::parse(&"1".repeat(25)),
        Err(DialPatternError::TooLong)
    );
    assert!(DialPattern::parse(&format!("{}*", "1".repeat(24))).is_ok());
}

#[test]
fn number_entries_are_checked() {
    let x = r#"[[numbers]]
number = "12333"
prefix = "0376"
mode = "dual"
line = "x"
start = "welcome"

[[numbers]]
number = "12366"
mode = "subcentre"
line = "税务"
start = "welcome"
subcentre = "tax"

[[numbers]]
prefix = "0376"
mode = "unified"
line = "x"
subcentre = "tax"
fallback = "busy"

[[numbers]]
prefix = "0376"
mode = "merged"
line = "x"

[[numbers]]
mode = "retired"
"#;
    assert_eq!(
        errors(x),
        [
            "dp/x.toml:3:1: error: number 12333 has both `number` and `prefix`; expected exactly one",
            "dp/x.toml:12:1: error: `start` is not allowed with mode = \"subcentre\"; the call goes \
             to the sub-centre's trunk",
            "dp/x.toml:15:1: error: prefix 0376 has no `start`; expected the first node of the \
             call (mode = \"unified\")",
            "dp/x.toml:19:1: error: `subcentre` is only allowed with mode = \"subcentre\"",
            "dp/x.toml:20:1: error: `fallback` is only allowed with mode = \"subcentre\"",
            "dp/x.toml:23:10: error: prefix 0376 is declared twice; first at dp/x.toml:16:10",
            "dp/x.toml:24:8: error: `mode` must be one of: unified, retired, dual, subcentre, \
             found \"merged\"",
            "dp/x.toml:27:1: error: [[numbers]] entry has neither `number` nor `prefix`; expected \
             exactly one",
            "dp/x.toml:27:1: error: [[numbers]] entry has no `line`; expected the hotline's name, \
             e.g. \"12345 政务服务便民热线\"",
            "dp/x.toml:27:1: error: [[numbers]] entry has no `start`; expected the first node of \
             the call (mode = \"retired\")",
        ]
    );
}

#[test]
fn a_set_needs_a_unified_number_and_files() {
    let sub = "[[numbers]]\nnumber = \"12366\"\nmode = \"subcentre\"\nline = \"x\"\nsubcentre = \"tax\"\n";
    let files = [("dp/12366.toml", sub), ("dp/shared.toml", SHARED)];
    assert_eq!(
        load_in(Path::new("dp"), &files).unwrap_err(),
        [
            "dp/12366.toml:1:1: error: no [[numbers]] entry with mode = \"unified\"; expected at \
             least one (the 12345 number itself)"
        ]
    );
    let errs = load_files(&[], Path::new("dp"), super::PromptSource::Unchecked).unwrap_err();
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["dp:1:1: error: no dialplan files (*.toml); expected shared.toml and one file per hotline"]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "not a dialplan").expect("write");
    let errs = load_dir(dir.path(), &dir.path().join("prompts")).unwrap_err();
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}:1:1: error: no dialplan files (*.toml) in this directory; expected shared.toml \
             and one file per hotline",
            dir.path().display()
        )]
    );
}

/// Writes a mono or stereo 16-bit WAV of `samples` frames.
fn write_wav(path: &Path, channels: u16, rate: u32, samples: usize) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..samples * usize::from(channels) {
        w.write_sample(((i % 64) as i16 - 32) * 100)
            .expect("sample");
    }
    w.finalize().expect("finalize");
}

#[test]
fn prompt_files_are_loaded_and_checked_at_each_reference() {
    let root = tempfile::tempdir().expect("tempdir");
    let dp = root.path().join("dialplans");
    let prompts = root.path().join("prompts");
    std::fs::create_dir_all(dp.join("sub")).expect("mkdir");
    std::fs::write(dp.join("shared.toml"), SHARED).expect("write");
    std::fs::write(dp.join("12345.toml"), MAIN).expect("write");
    std::fs::write(dp.join("sub/ignored.toml"), "this is not TOML").expect("write");
    write_wav(&prompts.join("12345/welcome.wav"), 1, 8000, 800);
    write_wav(&prompts.join("12345/main-menu.wav"), 2, 44100, 100);
    // What the queue plays without naming it: its default music, the announcements and the
    // notice of a failed transfer.
    let implied: Vec<&str> = std::iter::once("queue/music")
        .chain(ANNOUNCEMENT_PROMPTS.iter().copied())
        .chain(std::iter::once(crate::dialplan::spoken::TRANSFER_FAILED))
        .collect();
    for name in &implied[1..] {
        write_wav(&prompts.join(format!("{name}.wav")), 1, 8000, 80);
    }

    let errs: Vec<String> = load_dir(&dp, &prompts)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let (d, p) = (dp.display(), prompts.display());
    assert_eq!(
        errs,
        [
            format!(
                "{d}/12345.toml:12:9: error: prompt `12345/main-menu`: {p}/12345/main-menu.wav is \
                 not a usable WAV: found stereo, 16-bit integer PCM, 44100 Hz; expected 8 or 16 \
                 kHz mono 16-bit PCM"
            ),
            format!(
                "{d}/shared.toml:5:9: error: prompt `queue/music`: {p}/queue/music.wav does not \
                 exist"
            ),
            format!(
                "{d}/shared.toml:20:11: error: prompt `common/busy`: {p}/common/busy.wav does not \
                 exist"
            ),
        ]
    );

    write_wav(&prompts.join("12345/main-menu.wav"), 1, 16000, 1600);
    write_wav(&prompts.join("common/busy.wav"), 1, 8000, 80);
    write_wav(&prompts.join("queue/music.wav"), 1, 8000, 80);
    let loaded = load_dir(&dp, &prompts).expect("loads");
    let names = loaded.prompts.names();
    let named: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !implied.contains(n))
        .collect();
    assert_eq!(named, ["12345/main-menu", "12345/welcome", "common/busy"]);
    assert_eq!(names.len(), 3 + implied.len(), "{names:?}");
    assert_eq!(
        loaded.prompts.get("12345/main-menu").map(|p| p.samples),
        Some(800)
    );
    assert!(loaded.dialplan.prompts.iter().map(String::as_str).eq(names));
    assert_eq!(
        loaded.dialplan.numbers[0].origin.file,
        format!("{d}/12345.toml")
    );
}
