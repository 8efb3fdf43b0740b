//! What the engine says by stringing prompts together (`prompts/numbers/`, `prompts/queue/`):
//! Mandarin quantities, phone numbers read digit by digit, and the announcement a queue plays to
//! a waiting caller. Pure functions, so the switch and `simulate` say the same thing.

use std::time::Duration;

use super::model::PromptName;

/// The largest quantity said; larger ones are said as this.
pub const MAX_SPOKEN: u32 = 999;

/// What a caller hears when a transfer a seat made failed and the caller is back in the queue.
pub const TRANSFER_FAILED: &str = "queue/transfer-failed";

/// Every prompt [`queue_announcement`] can use; the loader checks them when a queue announces.
pub const ANNOUNCEMENT_PROMPTS: &[&str] = &[
    "queue/ahead-before",
    "queue/ahead-after",
    "queue/wait-before",
    "queue/wait-minutes",
    "queue/next",
    "queue/wait-under-minute",
    "numbers/0",
    "numbers/1",
    "numbers/2",
    "numbers/2-liang",
    "numbers/3",
    "numbers/4",
    "numbers/5",
    "numbers/6",
    "numbers/7",
    "numbers/8",
    "numbers/9",
    "numbers/10",
    "numbers/100",
];

/// Every prompt a `callback` node plays besides its own; the loader checks them.
pub const CALLBACK_PROMPTS: &[&str] = &[
    "queue/callback-confirm",
    "queue/callback-enter",
    "queue/callback-entered",
    "numbers/0",
    "numbers/1-yao",
    "numbers/2",
    "numbers/3",
    "numbers/4",
    "numbers/5",
    "numbers/6",
    "numbers/7",
    "numbers/8",
    "numbers/9",
];

/// The prompt of one digit 0..=9 (一, not 幺).
fn digit(d: u32) -> PromptName {
    format!("numbers/{}", d.min(9))
}

/// A quantity as said before a measure word (位, 分钟): 0 零, 2 两, 12 十二, 20 二十,
/// 105 一百零五, 110 一百一十, 200 两百; above [`MAX_SPOKEN`] it is said as 999.
pub fn spoken_number(n: u32) -> Vec<PromptName> {
    let n = n.min(MAX_SPOKEN);
    let (hundreds, tens, units) = (n / 100, n / 10 % 10, n % 10);
    let liang = || "numbers/2-liang".to_string();
    let mut out = Vec::new();
    if n == 2 {
        return vec![liang()];
    }
    if hundreds > 0 {
        out.push(if hundreds == 2 {
            liang()
        } else {
            digit(hundreds)
        });
        out.push("numbers/100".to_string());
        match (tens, units) {
            (0, 0) => {}
            (0, u) => out.extend([digit(0), digit(u)]),
            // 一百一十: after 百 the ten takes its digit.
            (t, _) => out.extend([digit(t), "numbers/10".to_string()]),
        }
    } else if tens > 0 {
        // 十二, not 一十二, when the number starts with the ten.
        if tens > 1 {
            out.push(digit(tens));
        }
        out.push("numbers/10".to_string());
    } else {
        return vec![digit(units)];
    }
    if tens > 0 && units > 0 {
        out.push(digit(units));
    }
    out
}

/// A phone number read digit by digit, 1 as 幺 (the way numbers are read on the phone);
/// anything but a digit is skipped.
pub fn spoken_digits(number: &str) -> Vec<PromptName> {
    number
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| match d {
            1 => "numbers/1-yao".to_string(),
            d => digit(d),
        })
        .collect()
}

/// The announcement to a waiting caller with `ahead` callers before them and an estimated
/// `wait`: 您是下一位，请稍候 when nobody is ahead; else 您前面还有 N 位 then 预计等待 M 分钟
/// (minutes rounded up) or 预计等待不到一分钟 under a minute.
pub fn queue_announcement(ahead: u32, wait: Duration) -> Vec<PromptName> {
    if ahead == 0 {
        return vec!["queue/next".to_string()];
    }
    let mut out = vec!["queue/ahead-before".to_string()];
    out.extend(spoken_number(ahead));
    out.push("queue/ahead-after".to_string());
    if wait < Duration::from_secs(60) {
        out.push("queue/wait-under-minute".to_string());
    } else {
        let minutes = wait.as_secs().div_ceil(60);
        out.push("queue/wait-before".to_string());
        out.extend(spoken_number(u32::try_from(minutes).unwrap_or(MAX_SPOKEN)));
        out.push("queue/wait-minutes".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prompts as their texts, for readable expectations.
    fn said(prompts: &[PromptName]) -> String {
        prompts
            .iter()
            .map(|p| match p.as_str() {
                "numbers/10" => "十",
                "numbers/100" => "百",
                "numbers/2-liang" => "两",
                "numbers/1-yao" => "幺",
                "queue/ahead-before" => "您前面还有",
                "queue/ahead-after" => "位。",
                "queue/wait-before" => "预计等待",
                "queue/wait-minutes" => "分钟。",
                "queue/next" => "您是下一位。",
                "queue/wait-under-minute" => "预计等待不到一分钟。",
                other => match other.strip_prefix("numbers/") {
                    Some(d) => ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
                        [d.parse::<usize>().expect("a digit")],
                    None => other,
                },
            })
            .collect()
    }

    #[test]
    fn quantities_are_said_as_in_mandarin() {
        let cases = [
            (0, "零"),
            (1, "一"),
            (2, "两"),
            (7, "七"),
            (10, "十"),
            (12, "十二"),
            (20, "二十"),
            (22, "二十二"),
            (23, "二十三"),
            (100, "一百"),
            (102, "一百零二"),
            (105, "一百零五"),
            (110, "一百一十"),
            (111, "一百一十一"),
            (200, "两百"),
            (250, "两百五十"),
            (999, "九百九十九"),
            (1000, "九百九十九"),
            (u32::MAX, "九百九十九"),
        ];
        for (n, text) in cases {
            assert_eq!(said(&spoken_number(n)), text, "{n}");
        }
    }

    #[test]
    fn phone_numbers_are_read_digit_by_digit_with_yao() {
        assert_eq!(said(&spoken_digits("12345")), "幺二三四五");
        assert_eq!(said(&spoken_digits("+86 10")), "八六幺零");
        assert!(spoken_digits("").is_empty());
    }

    #[test]
    fn the_announcement_says_position_and_wait() {
        let min = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(said(&queue_announcement(0, min(5))), "您是下一位。");
        assert_eq!(
            said(&queue_announcement(2, Duration::from_secs(59))),
            "您前面还有两位。预计等待不到一分钟。"
        );
        assert_eq!(
            said(&queue_announcement(12, min(3) + Duration::from_secs(1))),
            "您前面还有十二位。预计等待四分钟。"
        );
        assert_eq!(
            said(&queue_announcement(5000, min(100_000))),
            "您前面还有九百九十九位。预计等待九百九十九分钟。"
        );
    }

    #[test]
    fn every_composed_prompt_is_in_the_checked_lists() {
        let mut used: Vec<PromptName> = (0..=MAX_SPOKEN).flat_map(spoken_number).collect();
        for (ahead, secs) in [(0, 0), (3, 10), (3, 600)] {
            used.extend(queue_announcement(ahead, Duration::from_secs(secs)));
        }
        for p in &used {
            assert!(ANNOUNCEMENT_PROMPTS.contains(&p.as_str()), "{p}");
        }
        for p in spoken_digits("0123456789") {
            assert!(CALLBACK_PROMPTS.contains(&p.as_str()), "{p}");
        }
    }
}
