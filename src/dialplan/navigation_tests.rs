//! The interpreter in virtual time: what a caller hears and where they end up, key by key.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::load::{load_files, PromptSource, SourceFile};
use super::navigation::{Action, Navigation, PathEvent};
use super::Plan;

const SHARED: &str = r#"
[defaults]
operator = "operator"
timeout_s = 5
inter_digit_s = 2
retries = 2
invalid = ["invalid"]
no_input = ["no-input"]
queue_fallback = "busy"

[queues.general]
name = "general"
skill = "general"

[queues.housing]
name = "housing"
skill = "housing"

[subcentres.tax]
name = "tax"
trunk = "127.0.0.1:5070"

[calendars.cn]
holidays = ["2026-10-01..2026-10-07"]
workdays = ["2026-10-10"]

[schedules.office]
hours = ["mon-fri 09:00-17:00"]
calendar = "cn"

[schedules.night]
hours = ["mon-sun 22:00-06:00"]

[nodes.operator]
queue = "general"

[nodes.busy]
hangup = ["busy"]
"#;

fn plan(lines: &str) -> Arc<Plan> {
    let files = [
        SourceFile {
            name: "shared.toml".into(),
            text: SHARED.into(),
        },
        SourceFile {
            name: "line.toml".into(),
            text: lines.into(),
        },
    ];
    let loaded = load_files(&files, Path::new("."), PromptSource::Unchecked).unwrap_or_else(|e| {
        let e: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        panic!("test dialplan refused:\n{}", e.join("\n"))
    });
    Arc::new(Plan {
        dialplan: loaded.dialplan,
        prompts: loaded.prompts,
    })
}

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("test time")
}

/// A caller on a virtual clock.
struct Call {
    nav: Navigation,
    start: Instant,
    now: Instant,
    /// Everything asked of the controller, in order.
    actions: Vec<Action>,
}

impl Call {
    fn to(plan: &Arc<Plan>, number: &str, from: &str, at: &str) -> Call {
        let entry = plan.dialplan.lookup(number).expect("a declared number");
        let start = Instant::now();
        let (nav, actions) = Navigation::start(Arc::clone(plan), entry, from, start, local(at));
        Call {
            nav,
            start,
            now: start,
            actions,
        }
    }

    fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn played(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter_map(|a| match a {
                Action::Play { prompts, .. } => Some(prompts.join("+")),
                _ => None,
            })
            .collect()
    }

    fn finish_play(&mut self) {
        let actions = self.nav.on_play_finished(self.now);
        self.actions.extend(actions);
    }

    fn press(&mut self, keys: &str) {
        for key in keys.chars() {
            let actions = self.nav.on_digit(self.now, key);
            self.actions.extend(actions);
        }
    }

    /// Advances the clock by `by` and fires the wake-up if it is due.
    fn wait(&mut self, by: Duration) {
        self.now += by;
        let actions = self.nav.on_timeout(self.now);
        self.actions.extend(actions);
    }

    fn wake(&self) -> Option<Duration> {
        self.actions.iter().rev().find_map(|a| match a {
            Action::Wake(at) => Some(*at - self.start),
            _ => None,
        })
    }

    fn tag(&self, name: &str) -> Option<&str> {
        let tags = self.nav.tags();
        tags.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn nodes(&self) -> Vec<String> {
        let dialplan = &self.nav.plan().dialplan;
        let path = self.nav.path();
        path.iter()
            .filter_map(|s| match s.event {
                PathEvent::Enter(node) => Some(dialplan.node_name(node).to_string()),
                _ => None,
            })
            .collect()
    }

    fn queued(&mut self) -> Option<String> {
        let plan = Arc::clone(self.nav.plan());
        self.take().into_iter().find_map(|a| match a {
            Action::Queue { queue, .. } => {
                Some(plan.dialplan.queues[queue.0 as usize].name.clone())
            }
            _ => None,
        })
    }
}

const S: Duration = Duration::from_secs(1);

const MENU: &str = r#"
[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "main"

[nodes.main]
menu = ["main"]
keys = { "1" = "housing", "12" = "housing-fund", "3" = "id" }

[nodes.housing]
queue = "housing"
tags = { topic = "housing" }

[nodes.housing-fund]
queue = "housing"
priority = 3
tags = { topic = "housing-fund" }

[nodes.id]
collect = ["enter-id"]
tag = "id-number"
min_digits = 4
max_digits = 6
next = "housing"
"#;

#[test]
fn no_key_replays_the_menu_then_goes_to_a_person() {
    let plan = plan(MENU);
    let mut call = Call::to(&plan, "12345", "13800000000", "2026-10-12 10:00:00");
    assert_eq!(call.played(), ["main"]);
    call.finish_play();
    assert_eq!(call.wake(), Some(5 * S), "timeout_s after the prompt");
    call.take();
    call.wait(5 * S - Duration::from_millis(1));
    assert!(call.take().is_empty(), "not a moment early");
    call.wait(Duration::from_millis(1));
    assert_eq!(call.played(), ["no-input+main"], "second attempt");
    call.finish_play();
    call.wait(5 * S);
    assert_eq!(call.queued().as_deref(), Some("general"), "retries = 2");
    assert_eq!(call.nodes(), ["main", "operator"]);
}

#[test]
fn a_wrong_key_says_so_and_zero_always_reaches_a_person() {
    let plan = plan(MENU);
    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    call.take();
    call.press("7");
    assert_eq!(
        call.take(),
        [
            Action::StopPlay,
            Action::Play {
                prompts: vec!["invalid".into(), "main".into()],
                barge_in: true
            }
        ]
    );
    call.press("0");
    assert_eq!(call.queued().as_deref(), Some("general"), "implied 0");
}

#[test]
fn a_key_that_starts_a_longer_key_waits_the_inter_digit_time() {
    let plan = plan(MENU);
    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    call.take();
    call.press("1");
    assert_eq!(call.wake(), Some(2 * S), "inter_digit_s");
    call.take();
    call.wait(2 * S);
    assert_eq!(call.queued().as_deref(), Some("housing"));
    assert_eq!(call.tag("topic"), Some("housing"));

    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    call.take();
    call.press("12");
    assert_eq!(call.queued().as_deref(), Some("housing"));
    assert_eq!(call.tag("topic"), Some("housing-fund"), "no wait for 12");
}

#[test]
fn collect_ends_on_pound_on_max_digits_and_on_the_inter_digit_timeout() {
    let plan = plan(MENU);
    let collect = |keys: &str, then_wait: Option<Duration>| {
        let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
        call.finish_play();
        call.press("3");
        call.take();
        call.finish_play();
        call.press(keys);
        if let Some(by) = then_wait {
            call.wait(by);
        }
        call
    };
    let mut call = collect("12345#", None);
    assert_eq!(call.tag("id-number"), Some("12345"), "# ends it");
    assert_eq!(call.queued().as_deref(), Some("housing"));
    let call = collect("1234567", None);
    assert_eq!(call.tag("id-number"), Some("123456"), "max_digits ends it");
    let call = collect("1234", Some(2 * S));
    assert_eq!(call.tag("id-number"), Some("1234"), "inter-digit timeout");
    let path = call.nav.path();
    let keys = path.iter().filter(|s| matches!(s.event, PathEvent::Key(_)));
    assert_eq!(
        keys.count(),
        1,
        "only the menu key: collected digits stay private"
    );

    let mut call = collect("12#", None);
    assert_eq!(call.tag("id-number"), None, "too short");
    assert_eq!(call.played(), ["invalid+enter-id"]);
}

#[test]
fn a_barge_in_key_goes_to_the_next_menu() {
    let plan = plan(&format!(
        "{}\n[[numbers]]\nnumber = \"12333\"\nmode = \"dual\"\nline = \"x\"\nstart = \"hello\"\n\n[nodes.hello]\nplay = [\"hello\"]\nbarge_in = true\nnext = \"main\"\n",
        MENU
    ));
    let mut call = Call::to(&plan, "12333", "", "2026-10-12 10:00:00");
    assert_eq!(call.played(), ["hello"]);
    call.press("1");
    call.wait(2 * S);
    assert_eq!(call.queued().as_deref(), Some("housing"));
    assert_eq!(call.nodes(), ["hello", "main", "housing"]);
}

const HOURS: &str = r#"
[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "hours"

[lists.vip]
file = "lists/vip.txt"

[nodes.hours]
branch = [
  { caller_in = "vip", goto = "housing" },
  { open = "office", goto = "day" },
  { open = "night", goto = "night-menu" },
]
else = "closed"

[nodes.day]
goto = "operator"
tags = { shift = "day" }

[nodes.night-menu]
menu = ["night"]
keys = { "1" = "hours" }

[nodes.housing]
queue = "housing"

[nodes.closed]
hangup = ["closed"]
"#;

#[test]
fn schedules_follow_the_holiday_calendar_and_run_past_midnight() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("lists")).expect("lists dir");
    std::fs::write(dir.path().join("lists/vip.txt"), "# VIPs\n13900000001\n").expect("list");
    let files = [
        SourceFile {
            name: "shared.toml".into(),
            text: SHARED.into(),
        },
        SourceFile {
            name: "line.toml".into(),
            text: HOURS.into(),
        },
    ];
    let loaded = load_files(&files, dir.path(), PromptSource::Unchecked).expect("loads");
    let plan = Arc::new(Plan {
        dialplan: loaded.dialplan,
        prompts: loaded.prompts,
    });
    let first_node = |from: &str, at: &str| {
        let call = Call::to(&plan, "12345", from, at);
        call.nodes().get(1).cloned().unwrap_or_default()
    };
    assert_eq!(first_node("", "2026-10-12 10:00:00"), "day", "a Monday");
    assert_eq!(
        first_node("", "2026-10-01 10:00:00"),
        "closed",
        "National Day"
    );
    assert_eq!(
        first_node("", "2026-10-10 10:00:00"),
        "day",
        "a Saturday worked"
    );
    assert_eq!(first_node("", "2026-10-11 10:00:00"), "closed", "a Sunday");
    assert_eq!(first_node("", "2026-10-12 23:00:00"), "night-menu");
    assert_eq!(first_node("", "2026-10-13 05:59:00"), "night-menu");
    assert_eq!(
        first_node("13900000001", "2026-10-01 10:00:00"),
        "housing",
        "VIP"
    );

    // The menu is reached at 05:59:58; by the time the caller presses 1 and the branch runs
    // again it is past 06:00, and the night desk has closed.
    let mut call = Call::to(&plan, "12345", "", "2026-10-13 05:59:58");
    call.finish_play();
    call.wait(3 * S);
    call.take();
    call.press("1");
    assert_eq!(call.played(), ["closed"]);
    assert_eq!(call.nodes(), ["hours", "night-menu", "hours", "closed"]);
}

#[test]
fn retired_lines_hear_the_notice_with_their_topic_preselected() {
    let plan = plan(&format!(
        "{MENU}\n[[numbers]]\nnumber = \"12348\"\nmode = \"retired\"\nline = \"12348\"\nnotice = [\"merged\"]\ntags = {{ topic = \"legal-aid\" }}\nstart = \"housing\"\n"
    ));
    let mut call = Call::to(&plan, "12348", "", "2026-10-12 10:00:00");
    assert_eq!(call.tag("topic"), Some("legal-aid"));
    assert_eq!(
        call.take(),
        [Action::Play {
            prompts: vec!["merged".into()],
            barge_in: false
        }]
    );
    call.press("1");
    assert!(call.take().is_empty(), "the notice is not interruptible");
    call.finish_play();
    assert_eq!(call.queued().as_deref(), Some("housing"));
}

#[test]
fn hand_overs_that_fail_go_on_from_their_fallback() {
    let plan = plan(&format!(
        "{MENU}\n[[numbers]]\nnumber = \"12366\"\nmode = \"subcentre\"\nline = \"tax\"\nsubcentre = \"tax\"\n"
    ));
    let mut call = Call::to(&plan, "12366", "", "2026-10-12 10:00:00");
    assert!(matches!(call.take()[..], [Action::Transfer { .. }]));
    let actions = call.nav.on_transfer_failed(call.now);
    call.actions.extend(actions);
    assert_eq!(call.queued().as_deref(), Some("general"), "to the operator");
    let actions = call.nav.on_queue_unavailable(call.now);
    call.actions.extend(actions);
    assert_eq!(call.played(), ["busy"], "queue_fallback");
    call.finish_play();
    assert_eq!(call.take(), [Action::Hangup]);
    assert!(call.nav.is_done());
}

#[test]
fn after_the_seat_hangs_up_the_survey_takes_a_rating() {
    let plan = plan(
        r#"
[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "ask"

[nodes.ask]
queue = "general"
after = "rate"

[nodes.rate]
survey = ["rate"]
next = "bye"

[nodes.bye]
hangup = []
"#,
    );
    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    call.take();
    let actions = call.nav.on_seat_hung_up(call.now);
    call.actions.extend(actions);
    assert_eq!(call.played(), ["rate"]);
    call.press("9");
    assert_eq!(call.played(), ["invalid+rate"], "1 to 5 only");
    call.press("4");
    assert_eq!(call.tag("satisfaction"), Some("4"));
    assert_eq!(call.take(), [Action::StopPlay, Action::Hangup]);

    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    let actions = call.nav.on_seat_hung_up(call.now);
    call.actions.extend(actions);
    call.finish_play();
    call.wait(5 * S);
    call.finish_play();
    call.wait(5 * S);
    assert_eq!(call.tag("satisfaction"), None, "no answer, no rating");
    assert!(call.take().contains(&Action::Hangup));
}

#[test]
fn queue_fallbacks_that_chase_each_other_are_cut_short() {
    let plan = plan(
        r#"
[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "a"

[nodes.a]
queue = "general"
fallback = "b"

[nodes.b]
queue = "housing"
fallback = "a"
"#,
    );
    let mut call = Call::to(&plan, "12345", "", "2026-10-12 10:00:00");
    let mut rounds = 0;
    while call.queued().is_some() {
        rounds += 1;
        let actions = call.nav.on_queue_unavailable(call.now);
        call.actions.extend(actions);
    }
    assert!(rounds <= 64, "{rounds} hand-overs");
    assert!(call.nav.is_done());
    assert!(call.nav.path().iter().any(|s| s.event == PathEvent::Stuck));
}

const CALLBACK: &str = r#"
[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "q"

[[numbers]]
number = "12346"
mode = "dual"
line = "12346"
start = "q-general"

[queues.callme]
after_max_wait = "offer"

[nodes.q]
queue = "callme"

[nodes.q-general]
queue = "general"

[nodes.offer]
callback = "caller"
prompts = ["offer"]
next = "thanks"
fallback = "bye"

[nodes.thanks]
hangup = ["thanks"]

[nodes.bye]
hangup = ["bye"]
"#;

impl Call {
    /// The caller has waited the queue's max wait.
    fn max_wait(&mut self) {
        let actions = self.nav.on_queue_max_wait(self.now);
        self.actions.extend(actions);
    }

    /// The keys on the path.
    fn keys(&self) -> String {
        let path = self.nav.path().iter();
        path.filter_map(|s| match s.event {
            PathEvent::Key(k) => Some(k),
            _ => None,
        })
        .collect()
    }

    fn callbacks(&self) -> Vec<String> {
        let actions = self.actions.iter();
        actions
            .filter_map(|a| match a {
                Action::Callback { number } => Some(number.clone()),
                _ => None,
            })
            .collect()
    }
}

/// `queue/callback-confirm` after `before` and the digits of `number` (1 as 幺).
fn read_back(before: &str, number: &str) -> String {
    let digits = number.chars().map(|c| match c {
        '1' => "numbers/1-yao".to_string(),
        c => format!("numbers/{c}"),
    });
    std::iter::once(before.to_string())
        .chain(digits)
        .chain(["queue/callback-confirm".to_string()])
        .collect::<Vec<_>>()
        .join("+")
}

#[test]
fn max_wait_goes_to_after_max_wait_or_else_the_queue_nodes_fallback() {
    let plan = plan(CALLBACK);
    let mut call = Call::to(&plan, "12345", "13912345678", "2026-10-12 10:00:00");
    assert_eq!(call.queued().as_deref(), Some("callme"));
    call.wait(300 * S);
    call.max_wait();
    assert_eq!(call.played(), [read_back("offer", "13912345678")]);
    assert_eq!(call.nodes(), ["q", "offer"]);
    assert!(call
        .nav
        .path()
        .iter()
        .any(|s| s.event == PathEvent::Fallback));
    call.max_wait();
    assert!(call.take().is_empty(), "only while queued");

    let mut call = Call::to(&plan, "12346", "", "2026-10-12 10:00:00");
    assert_eq!(call.queued().as_deref(), Some("general"));
    call.max_wait();
    assert_eq!(call.played(), ["busy"], "general has no after_max_wait");
    assert_eq!(call.nodes(), ["q-general", "busy"]);
}

#[test]
fn a_callback_to_the_callers_own_number_is_confirmed_with_1() {
    let plan = plan(CALLBACK);
    let mut call = Call::to(&plan, "12345", "13912345678", "2026-10-12 10:00:00");
    call.take();
    call.max_wait();
    call.take();
    call.finish_play();
    assert_eq!(call.wake(), Some(5 * S), "timeout_s");
    call.press("1");
    assert_eq!(call.callbacks(), ["13912345678"]);
    assert_eq!(call.played(), ["thanks"]);
    assert_eq!(call.nodes(), ["q", "offer", "thanks"]);
    assert_eq!(call.keys(), "1");
}

#[test]
fn key_2_takes_another_number_read_back_before_it_is_confirmed() {
    let plan = plan(CALLBACK);
    let mut call = Call::to(&plan, "12345", "13912345678", "2026-10-12 10:00:00");
    call.max_wait();
    call.take();
    call.press("2");
    assert_eq!(call.played(), ["queue/callback-enter"]);
    call.press("123#");
    assert_eq!(
        call.played(),
        ["invalid+queue/callback-enter"],
        "fewer than 5 digits"
    );
    assert!(call
        .nav
        .path()
        .iter()
        .any(|s| s.event == PathEvent::Invalid("3 digits".into())));
    call.press("0371");
    call.press("12345");
    assert_eq!(call.wake(), Some(2 * S), "inter_digit_s");
    call.take();
    call.press("67#");
    let entered = read_back("queue/callback-entered", "03711234567");
    assert_eq!(call.played(), std::slice::from_ref(&entered));
    call.press("9");
    assert_eq!(call.played(), [format!("invalid+{entered}")], "1 or 2 only");
    call.press("1");
    assert_eq!(call.callbacks(), ["03711234567"]);
    assert_eq!(call.played(), ["thanks"]);
    assert_eq!(call.keys(), "291", "the typed number stays off the path");
    assert!(!format!("{:?}", call.nav.path()).contains("0371"));
}

#[test]
fn an_entry_ends_on_a_pause_and_is_refused_past_20_digits() {
    let plan = plan(CALLBACK);
    // A hidden number cannot be proposed: the caller is asked for one straight away.
    let mut call = Call::to(&plan, "12345", "anonymous", "2026-10-12 10:00:00");
    call.max_wait();
    assert_eq!(call.played(), ["queue/callback-enter"]);
    call.press("13800000000");
    call.wait(2 * S);
    assert_eq!(
        call.played(),
        [read_back("queue/callback-entered", "13800000000")]
    );
    call.press("2");
    call.take();
    call.press(&"1".repeat(21));
    assert_eq!(call.played(), ["invalid+queue/callback-enter"]);
    assert!(call.callbacks().is_empty());
}

#[test]
fn no_answer_to_the_callback_offer_goes_to_the_fallback() {
    let plan = plan(CALLBACK);
    let mut call = Call::to(&plan, "12345", "13912345678", "2026-10-12 10:00:00");
    call.max_wait();
    call.take();
    call.finish_play();
    call.wait(5 * S);
    assert_eq!(
        call.played(),
        [format!("no-input+{}", read_back("offer", "13912345678"))]
    );
    call.finish_play();
    call.wait(5 * S);
    assert_eq!(call.played(), ["bye"], "retries = 2");
    assert!(call.callbacks().is_empty());
    assert_eq!(call.nodes(), ["q", "offer", "bye"]);
    call.finish_play();
    assert_eq!(call.take(), [Action::Hangup]);
}
