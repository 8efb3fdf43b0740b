//! The built-in first call flow, until dialplans replace it: greet, take one key (5 s by
//! default), confirm the key, say goodbye, hang up.

use std::time::{Duration, Instant};

/// Prompt names this flow plays; the engine refuses to start when one is missing.
pub const PROMPTS: &[&str] = &[
    "greeting",
    "you-pressed",
    "no-input",
    "thanks-goodbye",
    "digit-0",
    "digit-1",
    "digit-2",
    "digit-3",
    "digit-4",
    "digit-5",
    "digit-6",
    "digit-7",
    "digit-8",
    "digit-9",
    "digit-star",
    "digit-pound",
];

/// What the flow asks the controller to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowAction {
    /// Play these prompts in order; a digit interrupts them when `barge_in`.
    Play {
        /// Prompt names.
        prompts: Vec<String>,
        /// Whether a key press stops the playback.
        barge_in: bool,
    },
    /// Stop the current playback.
    StopPlay,
    /// Call `on_timeout` at this instant.
    Wake(Instant),
    /// Hang up (BYE).
    Hangup,
}

/// Where the caller is in the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstFlow {
    /// The greeting is playing; a key interrupts it.
    Greeting,
    /// Waiting for a key until the deadline.
    AwaitingKey {
        /// When the wait ends.
        deadline: Instant,
    },
    /// Confirming the key (or the lack of one) before hanging up.
    Closing {
        /// The key pressed, if any.
        key: Option<char>,
    },
    /// Hung up.
    Done,
}

impl FirstFlow {
    /// Starts the flow once the call is answered.
    pub fn start() -> (FirstFlow, Vec<FlowAction>) {
        let play = FlowAction::Play {
            prompts: vec!["greeting".to_string()],
            barge_in: true,
        };
        (FirstFlow::Greeting, vec![play])
    }

    /// The playback ended (finished or interrupted).
    pub fn on_play_finished(&mut self, now: Instant, key_wait: Duration) -> Vec<FlowAction> {
        match *self {
            FirstFlow::Greeting => {
                let deadline = now + key_wait;
                *self = FirstFlow::AwaitingKey { deadline };
                vec![FlowAction::Wake(deadline)]
            }
            FirstFlow::Closing { .. } => {
                *self = FirstFlow::Done;
                vec![FlowAction::Hangup]
            }
            FirstFlow::AwaitingKey { .. } | FirstFlow::Done => Vec::new(),
        }
    }

    /// The caller pressed a key.
    pub fn on_digit(&mut self, digit: char) -> Vec<FlowAction> {
        match *self {
            FirstFlow::Greeting => {
                // The media plane stops a barge-in playback itself on RTP digits; StopPlay
                // covers digits that came by SIP INFO.
                *self = FirstFlow::Closing { key: Some(digit) };
                vec![FlowAction::StopPlay, confirm(Some(digit))]
            }
            FirstFlow::AwaitingKey { .. } => {
                *self = FirstFlow::Closing { key: Some(digit) };
                vec![confirm(Some(digit))]
            }
            FirstFlow::Closing { .. } | FirstFlow::Done => Vec::new(),
        }
    }

    /// A deadline passed.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<FlowAction> {
        match *self {
            FirstFlow::AwaitingKey { deadline } if now >= deadline => {
                *self = FirstFlow::Closing { key: None };
                vec![confirm(None)]
            }
            _ => Vec::new(),
        }
    }
}

/// The spoken name of a key's prompt.
pub fn digit_prompt(digit: char) -> Option<String> {
    match digit {
        '0'..='9' => Some(format!("digit-{digit}")),
        '*' => Some("digit-star".to_string()),
        '#' => Some("digit-pound".to_string()),
        _ => None,
    }
}

fn confirm(key: Option<char>) -> FlowAction {
    let prompts = match key.and_then(digit_prompt) {
        Some(digit) => vec!["you-pressed".to_string(), digit, "thanks-goodbye".into()],
        None => vec!["no-input".to_string(), "thanks-goodbye".to_string()],
    };
    FlowAction::Play {
        prompts,
        barge_in: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    fn played(actions: &[FlowAction]) -> Vec<String> {
        actions
            .iter()
            .flat_map(|a| match a {
                FlowAction::Play { prompts, .. } => prompts.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn key_after_greeting_is_confirmed_then_hangup() {
        let t0 = Instant::now();
        let (mut flow, actions) = FirstFlow::start();
        assert_eq!(played(&actions), ["greeting"]);
        assert_eq!(
            flow.on_play_finished(t0, WAIT),
            [FlowAction::Wake(t0 + WAIT)]
        );
        let actions = flow.on_digit('7');
        assert_eq!(
            played(&actions),
            ["you-pressed", "digit-7", "thanks-goodbye"]
        );
        assert_eq!(flow.on_play_finished(t0, WAIT), [FlowAction::Hangup]);
        assert_eq!(flow, FirstFlow::Done);
    }

    #[test]
    fn key_during_greeting_interrupts_it() {
        let t0 = Instant::now();
        let (mut flow, _) = FirstFlow::start();
        let actions = flow.on_digit('#');
        assert_eq!(actions[0], FlowAction::StopPlay);
        assert_eq!(
            played(&actions),
            ["you-pressed", "digit-pound", "thanks-goodbye"]
        );
        assert_eq!(flow.on_play_finished(t0, WAIT), [FlowAction::Hangup]);
    }

    #[test]
    fn no_key_within_the_wait_says_so() {
        let t0 = Instant::now();
        let (mut flow, _) = FirstFlow::start();
        flow.on_play_finished(t0, WAIT);
        assert!(flow
            .on_timeout(t0 + WAIT - Duration::from_millis(1))
            .is_empty());
        let actions = flow.on_timeout(t0 + WAIT);
        assert_eq!(played(&actions), ["no-input", "thanks-goodbye"]);
        assert!(
            flow.on_digit('1').is_empty(),
            "keys after the wait are ignored"
        );
    }
}
