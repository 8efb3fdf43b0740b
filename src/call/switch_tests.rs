//! Deterministic simulation tests of the signalling core: a scripted caller speaks SIP text to the
//! `Switch` (over the real endpoint and transaction layer), a fake media plane answers its
//! commands, and a virtual clock jumps from one `poll_timeout()` to the next. Nothing sleeps and
//! nothing touches a socket; every assertion is about what a caller or the media plane would see.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::caller::{CallId, Ending};
use super::switch::{Switch, SwitchConfig, SwitchOutput, ALLOW};
use crate::dialplan::clock::WallClock;
use crate::dialplan::load::{load_files, PromptSource, SourceFile};
use crate::dialplan::Plan;
use crate::media::codec::Codec as MediaCodec;
use crate::media::control::{DigitSource, LegId, MediaCommand, MediaEvent, StreamParams};
use crate::media::prompt::Prompt;
use crate::sdp::{self, Direction, SessionDescription};
use crate::sip::endpoint::{Endpoint, EndpointConfig};
use crate::sip::fields::Fields;
use crate::sip::message::{HeaderName, Message, Request, Response};
use crate::sip::parse::parse;
use crate::sip::peer::Peer;
use crate::sip::transaction::TimerConfig;
use crate::sip::uri::Uri;
use crate::tickets::record::CallRecord;

/// The engine's signalling and media address.
pub(super) const ENGINE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The hotline number.
const NUMBER: &str = "12345";
/// Where every scripted caller says it receives RTP.
const CALLER_RTP: &str = "198.51.100.7:40000";
/// The engine's Contact.
const CONTACT: &str = "<sip:hotline@192.0.2.1:5060>";

const T1: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// The harness: a switch, a virtual clock, a fake media plane and a record of the wire.
// ---------------------------------------------------------------------------------------------

pub(super) fn config() -> SwitchConfig {
    SwitchConfig {
        ring: Duration::ZERO,
        max_calls: 10,
        media_ip: IpAddr::V4(ENGINE_IP),
        contact: Uri::sip(Some("hotline"), &ENGINE_IP.to_string(), Some(5060)),
        codecs: vec![sdp::Codec::Pcma, sdp::Codec::Pcmu],
        redact_numbers: true,
        recordings: None,
        seats: Default::default(),
    }
}

#[test]
fn numbers_are_redacted_for_logs() {
    assert_eq!(super::switch::redact("13800000000"), "138****0000");
    assert_eq!(super::switch::redact("12345"), "1***5");
    assert_eq!(super::switch::redact("110"), "***");
}

/// The issue-2 first flow as a dialplan: greeting, one key, read back, hang up.
const FIRST_FLOW: &str = include_str!("../../tests/dialplans/first-flow/12345.toml");

/// A plan from dialplan text, with a 20 ms silent prompt for every prompt it names.
pub(crate) fn plan(files: &[(&str, &str)]) -> Arc<Plan> {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(name, text)| SourceFile {
            name: name.to_string(),
            text: text.to_string(),
        })
        .collect();
    let loaded = load_files(&files, std::path::Path::new("."), PromptSource::Unchecked)
        .unwrap_or_else(|problems| {
            let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            panic!("test dialplan refused:\n{}", problems.join("\n"))
        });
    let mut prompts = loaded.prompts;
    for name in &loaded.dialplan.prompts {
        prompts.insert(Prompt::from_pcm(name.as_str(), vec![0; 160]));
    }
    Arc::new(Plan {
        dialplan: loaded.dialplan,
        prompts,
    })
}

/// 2026-10-12 10:00 local (+08:00), a Monday, at the simulation's start.
fn clock(base: Instant) -> WallClock {
    let utc = chrono::NaiveDate::from_ymd_opt(2026, 10, 12)
        .and_then(|d| d.and_hms_opt(2, 0, 0))
        .expect("a valid date");
    WallClock { instant: base, utc }
}

/// One message the engine sent.
#[derive(Clone, Debug)]
pub(super) struct Sent {
    /// Virtual time since the start of the simulation.
    pub(super) at: Duration,
    pub(super) to: Peer,
    pub(super) message: Message,
}

impl Sent {
    pub(super) fn summary(&self) -> String {
        summary(&self.message)
    }
}

/// `INVITE`, `BYE`... for requests; `200 INVITE`, `487 INVITE`... for responses.
fn summary(message: &Message) -> String {
    match message {
        Message::Request(r) => r.method.to_string(),
        Message::Response(r) => {
            let method = r.cseq().map(|c| c.method.to_string()).unwrap_or_default();
            format!("{} {method}", r.status)
        }
    }
}

/// A media command as one readable line.
pub(super) fn show(command: &MediaCommand) -> String {
    // The caller's leg `1`, its partner (seat or trunk) `1'`, its third leg `1"`.
    let leg = |leg: &LegId| match leg {
        l if *l == l.call_leg() => l.0.to_string(),
        l if *l == l.call_leg().third() => format!("{}\"", l.call_leg().0),
        l if *l == l.call_leg().fourth() => format!("{}'\"", l.call_leg().0),
        l => format!("{}'", l.call_leg().0),
    };
    match command {
        MediaCommand::Open { leg: l } => format!("open {}", leg(l)),
        MediaCommand::Stream { leg: l, params } => format!(
            "stream {} {:?}/{} to {} te={:?}{}{}",
            leg(l),
            params.codec,
            params.payload_type,
            params.remote,
            params.telephone_event,
            if params.send { " send" } else { "" },
            if params.receive { " recv" } else { "" },
        ),
        MediaCommand::Play {
            leg,
            play,
            prompts,
            barge_in,
        } => {
            let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
            format!(
                "play {} #{play} [{}]{}",
                leg.0,
                names.join(" "),
                if *barge_in { " barge-in" } else { "" }
            )
        }
        MediaCommand::StopPlay { leg: l } => format!("stop {}", leg(l)),
        MediaCommand::Close { leg: l } => format!("close {}", leg(l)),
        MediaCommand::Bridge { leg: l, peer } => format!("bridge {} {}", leg(l), leg(peer)),
        MediaCommand::Unbridge { leg: l } => format!("unbridge {}", leg(l)),
        MediaCommand::Conference { legs } => {
            let legs: Vec<String> = legs.iter().map(leg).collect();
            format!("conference {}", legs.join(" "))
        }
        MediaCommand::EndConference { leg: l } => format!("end conference {}", leg(l)),
        MediaCommand::Record { leg: l, path } => format!("record {} {}", leg(l), path.display()),
        MediaCommand::StopRecording { leg: l } => format!("stop recording {}", leg(l)),
    }
}

pub(super) struct Sim {
    pub(super) switch: Switch,
    base: Instant,
    pub(super) now: Instant,
    /// Everything the engine sent, in order.
    pub(super) log: Vec<Sent>,
    /// How much of `log` the test has looked at.
    pub(super) read: usize,
    /// Media commands the test has not looked at yet.
    media: Vec<MediaCommand>,
    /// Whether the fake media plane answers `Open` at once with `Opened`.
    auto_open: bool,
    ended: Vec<(CallId, Ending)>,
    /// Call records the switch handed out, progress rows and final ones, in order.
    pub(super) records: Vec<CallRecord>,
    /// Events for the agent desktops, in order.
    pub(super) desk: Vec<crate::desk::DeskEvent>,
}

impl Sim {
    fn new(config: SwitchConfig) -> Sim {
        Sim::with_plan(config, plan(&[("first-flow.toml", FIRST_FLOW)]))
    }

    pub(super) fn with_plan(config: SwitchConfig, plan: Arc<Plan>) -> Sim {
        let endpoint = Endpoint::new(
            EndpointConfig {
                via_host: ENGINE_IP.to_string(),
                via_port: 5060,
                timers: TimerConfig::default(),
                server_name: "hotline-sim".to_string(),
            },
            0x1234_5678,
        );
        let base = Instant::now();
        Sim {
            switch: Switch::new(config, endpoint, plan, clock(base)),
            base,
            now: base,
            log: Vec::new(),
            read: 0,
            media: Vec::new(),
            auto_open: true,
            ended: Vec::new(),
            records: Vec::new(),
            desk: Vec::new(),
        }
    }

    /// `phone` sends an INVITE with a PCMA-first offer; the engine answers 100 at once.
    fn dial(&mut self, phone: &mut Phone) {
        let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
        self.send(phone.addr, phone.invite(Some(&offer)));
        self.expect_response(phone, 100, "INVITE");
    }

    /// Virtual time since the start.
    fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// The port the fake media plane binds for `leg`.
    pub(super) fn rtp_port(leg: LegId) -> u16 {
        let partner = if leg == leg.call_leg() { 0 } else { 1000 };
        30_000 + partner + 2 * leg.call_leg().0 as u16
    }

    /// Drains the switch; the fake media plane answers `Open` when `auto_open`.
    pub(super) fn drain(&mut self) {
        loop {
            let mut opened = Vec::new();
            while let Some(output) = self.switch.poll_output() {
                match output {
                    SwitchOutput::Transmit(transmit) => {
                        let message = parse(&transmit.bytes).unwrap_or_else(|e| {
                            panic!(
                                "the engine sent unreadable SIP ({e}):\n{}",
                                String::from_utf8_lossy(&transmit.bytes)
                            )
                        });
                        self.log.push(Sent {
                            at: self.elapsed(),
                            to: transmit.to,
                            message,
                        });
                    }
                    SwitchOutput::Media(command) => {
                        if let MediaCommand::Open { leg } = command {
                            if self.auto_open {
                                opened.push(leg);
                            }
                        }
                        self.media.push(command);
                    }
                    SwitchOutput::Desk(event) => self.desk.push(event),
                    // The fake store has every record on disk at once.
                    SwitchOutput::Record(record) => {
                        if record.is_finished() {
                            self.switch.record_durable(&record.id);
                        }
                        self.records.push(*record);
                    }
                }
            }
            self.ended.extend(self.switch.take_ended());
            if opened.is_empty() {
                break;
            }
            for leg in opened {
                self.opened(leg);
            }
        }
    }

    /// The media plane bound `leg`'s port.
    fn opened(&mut self, leg: LegId) {
        let local = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), Sim::rtp_port(leg));
        self.switch
            .handle_media_event(self.now, MediaEvent::Opened { leg, local });
        self.drain();
    }

    /// A datagram from `from`.
    pub(super) fn send(&mut self, from: SocketAddr, text: impl AsRef<[u8]>) {
        self.switch
            .handle_message(self.now, Peer::udp(from), text.as_ref());
        self.drain();
    }

    fn media_event(&mut self, event: MediaEvent) {
        self.switch.handle_media_event(self.now, event);
        self.drain();
    }

    pub(super) fn digit(&mut self, leg: LegId, digit: char) {
        self.media_event(MediaEvent::Digit {
            leg,
            digit,
            source: DigitSource::Rfc4733,
        });
    }

    pub(super) fn play_finished(&mut self, leg: LegId, play: u64) {
        self.media_event(MediaEvent::PlayFinished { leg, play });
    }

    pub(super) fn shutdown(&mut self) {
        self.switch.shutdown(self.now);
        self.drain();
    }

    pub(super) fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    /// Moves the clock to `target`, firing every timer due on the way at its own instant.
    fn advance_to(&mut self, target: Instant) {
        for _ in 0..100_000 {
            match self.switch.poll_timeout() {
                Some(at) if at <= target => {
                    self.now = self.now.max(at);
                    self.switch.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.now = self.now.max(target);
                    return;
                }
            }
        }
        panic!("timers keep firing at {:?}", self.elapsed());
    }

    /// Messages sent since the test last looked, as summaries.
    fn wire(&mut self) -> Vec<String> {
        self.take_wire().iter().map(Sent::summary).collect()
    }

    fn take_wire(&mut self) -> Vec<Sent> {
        let unread = self.log[self.read..].to_vec();
        self.read = self.log.len();
        unread
    }

    fn next_sent(&mut self, to: &Phone, expected: &str) -> Sent {
        let Some(sent) = self.log.get(self.read).cloned() else {
            panic!("expected {expected} to {}, nothing was sent", to.addr);
        };
        self.read += 1;
        assert_eq!(sent.summary(), expected, "at {:?}: {sent:?}", sent.at);
        assert_eq!(sent.to.addr, to.addr, "{expected} went to the wrong place");
        sent
    }

    /// The next message on the wire must be this response to `to`.
    pub(super) fn expect_response(&mut self, to: &Phone, status: u16, method: &str) -> Response {
        match self.next_sent(to, &format!("{status} {method}")).message {
            Message::Response(response) => response,
            Message::Request(_) => unreachable!(),
        }
    }

    /// A re-INVITE is answered 100, then 200.
    fn expect_reinvite_ok(&mut self, to: &Phone) -> Response {
        self.expect_response(to, 100, "INVITE");
        self.expect_response(to, 200, "INVITE")
    }

    /// The next message on the wire must be this request to `to`.
    pub(super) fn expect_request(&mut self, to: &Phone, method: &str) -> Request {
        match self.next_sent(to, method).message {
            Message::Request(request) => request,
            Message::Response(_) => unreachable!(),
        }
    }

    pub(super) fn assert_quiet(&mut self) {
        let unread = self.wire();
        assert!(unread.is_empty(), "unexpected messages: {unread:?}");
        let media = self.media();
        assert!(media.is_empty(), "unexpected media commands: {media:?}");
    }

    /// Media commands since the test last looked, as readable lines.
    pub(super) fn media(&mut self) -> Vec<String> {
        self.take_media().iter().map(show).collect()
    }

    pub(super) fn take_media(&mut self) -> Vec<MediaCommand> {
        std::mem::take(&mut self.media)
    }

    fn take_ended(&mut self) -> Vec<(CallId, Ending)> {
        std::mem::take(&mut self.ended)
    }

    /// When each message matching `summary` was sent, since the start.
    fn times_of(&self, summary: &str) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|s| s.summary() == summary)
            .map(|s| s.at)
            .collect()
    }
}

/// The id of the playback in a `Play` command.
pub(super) fn play_id(command: &MediaCommand) -> u64 {
    match command {
        MediaCommand::Play { play, .. } => *play,
        other => panic!("expected a Play, got {other:?}"),
    }
}

fn stream_params(command: &MediaCommand) -> StreamParams {
    match command {
        MediaCommand::Stream { params, .. } => *params,
        other => panic!("expected a Stream, got {other:?}"),
    }
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---------------------------------------------------------------------------------------------
// The scripted caller: writes SIP text, remembers what the dialog needs.
// ---------------------------------------------------------------------------------------------

pub(super) struct Phone {
    pub(super) addr: SocketAddr,
    call_id: String,
    from_tag: String,
    /// The number dialled.
    dialled: String,
    cseq: u32,
    branches: u32,
    invite_branch: String,
    invite_cseq: u32,
    invite_uri: String,
    last_invite: String,
    /// The last request written (for retransmissions).
    last_request: String,
    /// Learned from the engine's tagged responses.
    to_tag: Option<String>,
    /// The engine's Contact, the Request-URI of in-dialog requests.
    target: Option<String>,
}

impl Phone {
    /// Caller `n`, at 198.51.100.`n`:5062.
    pub(super) fn new(n: u8) -> Phone {
        Phone {
            addr: SocketAddr::new(Ipv4Addr::new(198, 51, 100, n).into(), 5062),
            call_id: format!("call-{n}@198.51.100.{n}"),
            from_tag: format!("citizen{n}"),
            dialled: NUMBER.to_string(),
            cseq: 0,
            branches: 0,
            invite_branch: String::new(),
            invite_cseq: 0,
            invite_uri: String::new(),
            last_invite: String::new(),
            last_request: String::new(),
            to_tag: None,
            target: None,
        }
    }

    fn dialling(mut self, number: &str) -> Phone {
        self.dialled = number.to_string();
        self
    }

    fn new_branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-{}-{}", self.from_tag, self.branches)
    }

    fn request_uri(&self) -> String {
        format!("sip:{}@{ENGINE_IP}:5060", self.dialled)
    }

    fn to_untagged(&self) -> String {
        format!("<sip:{}@{ENGINE_IP}>", self.dialled)
    }

    fn to_tagged(&self) -> String {
        let tag = self.to_tag.as_deref().expect("no To tag learned yet");
        format!("{};tag={tag}", self.to_untagged())
    }

    fn text(
        &self,
        method: &str,
        uri: &str,
        branch: &str,
        to: &str,
        cseq: u32,
        body: Option<(&str, &str)>,
    ) -> String {
        let mut text = format!("{method} {uri} SIP/2.0\r\n");
        text += &format!("Via: SIP/2.0/UDP {};branch={branch};rport\r\n", self.addr);
        text += "Max-Forwards: 70\r\n";
        text += &format!(
            "From: \"Citizen\" <sip:13800000000@{}>;tag={}\r\n",
            self.addr.ip(),
            self.from_tag
        );
        text += &format!("To: {to}\r\n");
        text += &format!("Call-ID: {}\r\n", self.call_id);
        text += &format!("CSeq: {cseq} {method}\r\n");
        if method != "CANCEL" && method != "ACK" {
            text += &format!("Contact: <sip:13800000000@{}>\r\n", self.addr);
        }
        match body {
            Some((content_type, body)) => {
                text += &format!("Content-Type: {content_type}\r\n");
                text += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
            }
            None => text += "Content-Length: 0\r\n\r\n",
        }
        text
    }

    /// A new INVITE, with an SDP offer or without (late offer).
    pub(super) fn invite(&mut self, sdp: Option<&str>) -> String {
        self.cseq += 1;
        self.invite_cseq = self.cseq;
        self.invite_branch = self.new_branch();
        self.invite_uri = self.request_uri();
        self.last_invite = self.text(
            "INVITE",
            &self.invite_uri,
            &self.invite_branch,
            &self.to_untagged(),
            self.cseq,
            sdp.map(|s| ("application/sdp", s)),
        );
        self.last_invite.clone()
    }

    /// Reads the To tag and Contact of a response that establishes the dialog.
    pub(super) fn learn(&mut self, response: &Response) {
        self.to_tag = response
            .to_header()
            .ok()
            .and_then(|to| to.tag().map(str::to_string));
        if let Some(Ok(contact)) = response.contact() {
            self.target = Some(contact.uri.to_string());
        }
    }

    /// The ACK for a 2xx to the INVITE: its own branch, sent to the engine's Contact.
    pub(super) fn ack(&mut self, sdp: Option<&str>) -> String {
        let branch = self.new_branch();
        let target = self.target.clone().expect("no Contact learned yet");
        self.text(
            "ACK",
            &target,
            &branch,
            &self.to_tagged(),
            self.invite_cseq,
            sdp.map(|s| ("application/sdp", s)),
        )
    }

    /// The ACK for a non-2xx final response: the INVITE's branch and the response's To.
    fn ack_failure(&self, response: &Response) -> String {
        let to = response.headers.get(&HeaderName::To).unwrap_or_default();
        self.text(
            "ACK",
            &self.invite_uri,
            &self.invite_branch,
            to,
            self.invite_cseq,
            None,
        )
    }

    /// CANCEL for the pending INVITE.
    fn cancel(&self) -> String {
        self.text(
            "CANCEL",
            &self.request_uri(),
            &self.invite_branch,
            &self.to_untagged(),
            self.invite_cseq,
            None,
        )
    }

    /// A new in-dialog request with the next CSeq.
    pub(super) fn in_dialog(&mut self, method: &str, body: Option<(&str, &str)>) -> String {
        self.cseq += 1;
        self.in_dialog_with_cseq(method, self.cseq, body)
    }

    /// An in-dialog request with a chosen CSeq.
    fn in_dialog_with_cseq(
        &mut self,
        method: &str,
        cseq: u32,
        body: Option<(&str, &str)>,
    ) -> String {
        let branch = self.new_branch();
        let target = self.target.clone().expect("no Contact learned yet");
        self.last_request = self.text(method, &target, &branch, &self.to_tagged(), cseq, body);
        if method == "INVITE" {
            // A re-INVITE: the INVITE the next ACK acknowledges.
            self.invite_cseq = cseq;
            self.invite_branch = branch;
            self.invite_uri = target;
        }
        self.last_request.clone()
    }

    /// A re-INVITE carrying `sdp`.
    fn reinvite(&mut self, sdp: &str) -> String {
        self.in_dialog("INVITE", Some(("application/sdp", sdp)))
    }

    /// The phone's answer to a request from the engine.
    pub(super) fn reply(&self, request: &Request, status: u16) -> Vec<u8> {
        let mut response = Response::to(request, status);
        response.headers.push(
            HeaderName::Contact,
            format!("<sip:13800000000@{}>", self.addr),
        );
        Message::Response(response).to_bytes()
    }
}

/// The caller's SDP: payload types `formats` (8, 0, 18, 101 known), direction, `o=` version.
pub(super) fn caller_sdp(version: u64, formats: &[u8], direction: &str) -> String {
    let rtp: SocketAddr = CALLER_RTP.parse().unwrap();
    let list: Vec<String> = formats.iter().map(u8::to_string).collect();
    let mut text = format!(
        "v=0\r\no=citizen 4242 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {list}\r\n",
        ip = rtp.ip(),
        port = rtp.port(),
        list = list.join(" ")
    );
    for pt in formats {
        text += match pt {
            8 => "a=rtpmap:8 PCMA/8000\r\n",
            0 => "a=rtpmap:0 PCMU/8000\r\n",
            18 => "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n",
            101 => "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
            other => panic!("no rtpmap for {other}"),
        };
    }
    text += &format!("a=ptime:20\r\na={direction}\r\n");
    text
}

fn sdp_of(response: &Response) -> SessionDescription {
    assert_eq!(
        response.content_type().as_deref(),
        Some("application/sdp"),
        "{response:?}"
    );
    SessionDescription::parse(&response.body).expect("the engine's SDP must parse")
}

/// What a set-up call leaves the test: the leg, the 200 and the greeting's playback id.
struct Answered {
    leg: LegId,
    ok: Response,
    greeting: u64,
}

/// INVITE with a PCMA-first offer → 100, 200 (ACKed): the caller hears the greeting.
fn answered(sim: &mut Sim, phone: &mut Phone) -> Answered {
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(phone.addr, phone.invite(Some(&offer)));
    sim.expect_response(phone, 100, "INVITE");
    let ok = sim.expect_response(phone, 200, "INVITE");
    phone.learn(&ok);
    let media = sim.take_media();
    assert_eq!(media.len(), 3, "{media:?}");
    let leg = media[0].leg();
    let greeting = play_id(&media[2]);
    sim.send(phone.addr, phone.ack(None));
    sim.assert_quiet();
    Answered { leg, ok, greeting }
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn answers_greets_confirms_a_key_and_hangs_up() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(phone.addr, phone.invite(Some(&offer)));

    let trying = sim.expect_response(&phone, 100, "INVITE");
    assert_eq!(
        trying.to_header().unwrap().tag(),
        None,
        "100 carries no tag"
    );
    let ok = sim.expect_response(&phone, 200, "INVITE");
    let tag = ok.to_header().unwrap().tag().map(str::to_string);
    assert!(tag.is_some(), "200 must carry our To tag: {ok:?}");
    assert_eq!(ok.headers.get(&HeaderName::Contact), Some(CONTACT));
    assert_eq!(ok.headers.get(&HeaderName::Allow), Some(ALLOW));
    assert_eq!(ok.call_id().unwrap(), phone.call_id);
    let answer = sdp_of(&ok);
    let audio = &answer.media[0];
    assert_eq!(
        audio.formats,
        ["8", "101"],
        "PCMA, offered first, is chosen"
    );
    assert_eq!(audio.rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(audio.rtpmap(101).unwrap().encoding, "telephone-event");
    assert_eq!(audio.port, Sim::rtp_port(LegId(1)));
    assert_eq!(answer.connection, Some(IpAddr::V4(ENGINE_IP)));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(
        sim.media(),
        [
            "open 1",
            "stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv",
            "play 1 #1 [greeting] barge-in",
        ]
    );
    phone.learn(&ok);
    sim.send(phone.addr, phone.ack(None));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);

    sim.digit(LegId(1), '7');
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["stop 1", "play 1 #2 [you-pressed digit-7 thanks-goodbye]"]
    );
    assert!(sim.wire().is_empty());
    sim.play_finished(LegId(1), play_id(&media[1]));

    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(
        bye.uri.to_string(),
        format!("sip:13800000000@{}", phone.addr),
        "BYE goes to the caller's Contact"
    );
    assert_eq!(bye.from_header().unwrap().tag(), tag.as_deref());
    assert_eq!(
        bye.to_header().unwrap().tag(),
        Some(phone.from_tag.as_str())
    );
    assert_eq!(bye.call_id().unwrap(), phone.call_id);
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);
    assert_eq!(sim.switch.active_calls(), 1, "until the BYE is answered");

    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty(), "one ending per call");
    sim.advance(secs(64.0));
    assert!(sim.switch.is_idle());
    sim.assert_quiet();
}

#[test]
fn no_key_after_the_greeting_says_no_input_then_hangs_up() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    sim.play_finished(call.leg, call.greeting);
    sim.assert_quiet();

    sim.advance(secs(4.999));
    sim.assert_quiet();
    sim.advance(secs(0.001));
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["play 1 #2 [no-input thanks-goodbye]"]
    );
    assert!(sim.wire().is_empty());

    sim.play_finished(call.leg, play_id(&media[0]));
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);

    // A key after the wait is too late for a call that is gone.
    sim.digit(call.leg, '1');
    sim.assert_quiet();
}

#[test]
fn stale_play_finished_is_ignored() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    sim.digit(call.leg, '#');
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        [
            "stop 1",
            "play 1 #2 [you-pressed digit-pound thanks-goodbye]"
        ]
    );
    let confirm = play_id(&media[1]);

    // The interrupted greeting reports late, and an unknown playback reports.
    sim.play_finished(call.leg, call.greeting);
    sim.play_finished(call.leg, 99);
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());

    sim.play_finished(call.leg, confirm);
    sim.expect_request(&phone, "BYE");
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);
    // Reported twice: still one BYE.
    sim.play_finished(call.leg, confirm);
    assert_eq!(sim.media(), ["close 1"]);
    sim.assert_quiet();
}

#[test]
fn caller_bye_during_the_greeting_ends_the_call() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    sim.advance(secs(1.0));

    sim.send(phone.addr, phone.in_dialog("BYE", None));
    let ok = sim.expect_response(&phone, 200, "BYE");
    assert_eq!(
        ok.to_header().unwrap().tag(),
        call.ok.to_header().unwrap().tag()
    );
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerHungUp)]);
    assert_eq!(sim.switch.active_calls(), 0);
    sim.assert_quiet();

    // The media plane's late news about the call changes nothing.
    sim.play_finished(call.leg, call.greeting);
    sim.digit(call.leg, '3');
    sim.assert_quiet();

    // A retransmission of the BYE gets the same 200 from its transaction; a new BYE finds no
    // dialog.
    sim.send(phone.addr, phone.last_request.clone());
    assert_eq!(sim.expect_response(&phone, 200, "BYE"), ok);
    sim.send(phone.addr, phone.in_dialog("BYE", None));
    sim.expect_response(&phone, 481, "BYE");
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty());
}

#[test]
fn caller_bye_before_the_ack_stops_the_200() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ok = sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    sim.take_media();

    // The caller's ACK is lost; its BYE arrives.
    sim.advance(secs(0.2));
    sim.send(phone.addr, phone.in_dialog("BYE", None));
    sim.expect_response(&phone, 200, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerHungUp)]);
    assert_eq!(sim.switch.active_calls(), 0);
    // The BYE shows the 200 arrived: no more 200s for a call that is over, and no BYE of ours.
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty());
    assert!(sim.switch.is_idle());
}

#[test]
fn concurrent_calls_stay_apart() {
    let mut sim = Sim::new(config());
    sim.auto_open = false;
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    let mut first = Phone::new(7);
    let mut second = Phone::new(8);
    sim.send(first.addr, first.invite(Some(&offer)));
    sim.send(second.addr, second.invite(Some(&offer)));
    sim.expect_response(&first, 100, "INVITE");
    sim.expect_response(&second, 100, "INVITE");
    assert_eq!(sim.media(), ["open 1", "open 2"]);

    // The media plane binds the ports out of order.
    sim.opened(LegId(2));
    let ok2 = sim.expect_response(&second, 200, "INVITE");
    sim.opened(LegId(1));
    let ok1 = sim.expect_response(&first, 200, "INVITE");
    let (sdp1, sdp2) = (sdp_of(&ok1), sdp_of(&ok2));
    assert_eq!(sdp1.media[0].port, Sim::rtp_port(LegId(1)));
    assert_eq!(sdp2.media[0].port, Sim::rtp_port(LegId(2)));
    assert_ne!(
        sdp1.origin.session_id, sdp2.origin.session_id,
        "each call has its own o= session"
    );
    assert_ne!(
        ok1.to_header().unwrap().tag(),
        ok2.to_header().unwrap().tag()
    );
    assert_eq!(
        sim.media(),
        [
            "stream 2 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv",
            "play 2 #1 [greeting] barge-in",
            "stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv",
            "play 1 #2 [greeting] barge-in",
        ]
    );
    first.learn(&ok1);
    second.learn(&ok2);
    sim.send(first.addr, first.ack(None));
    sim.send(second.addr, second.ack(None));
    sim.assert_quiet();

    // A key on one leg and a hang-up on the other.
    sim.digit(LegId(1), '9');
    assert_eq!(
        sim.media(),
        ["stop 1", "play 1 #3 [you-pressed digit-9 thanks-goodbye]"]
    );
    sim.send(second.addr, second.in_dialog("BYE", None));
    sim.expect_response(&second, 200, "BYE");
    assert_eq!(sim.media(), ["close 2"]);
    assert_eq!(sim.take_ended(), [(CallId(2), Ending::CallerHungUp)]);
    sim.play_finished(LegId(1), 3);
    let bye = sim.expect_request(&first, "BYE");
    assert_eq!(bye.call_id().unwrap(), first.call_id);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);
    sim.send(first.addr, first.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn cancel_while_ringing_gets_487_and_its_ack_is_absorbed() {
    let mut sim = Sim::new(SwitchConfig {
        ring: secs(10.0),
        ..config()
    });
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ringing = sim.expect_response(&phone, 180, "INVITE");
    let tag = ringing.to_header().unwrap().tag().map(str::to_string);
    assert!(tag.is_some(), "180 carries our To tag");
    assert_eq!(ringing.headers.get(&HeaderName::Contact), Some(CONTACT));
    assert_eq!(sim.media(), ["open 1"]);

    sim.advance(secs(3.0));
    sim.assert_quiet();
    sim.send(phone.addr, phone.cancel());
    let cancelled = sim.expect_response(&phone, 200, "CANCEL");
    assert_eq!(cancelled.cseq().unwrap().seq, phone.invite_cseq);
    assert_eq!(
        cancelled.to_header().unwrap().tag(),
        tag.as_deref(),
        "the 200 to CANCEL carries the INVITE's To tag (RFC 3261 §9.2)"
    );
    let terminated = sim.expect_response(&phone, 487, "INVITE");
    assert_eq!(terminated.to_header().unwrap().tag(), tag.as_deref());
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerCancelled)]);
    assert_eq!(sim.switch.active_calls(), 0);

    sim.send(phone.addr, phone.ack_failure(&terminated));
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty());
    // No 487 retransmission after the ACK, and no answer when the ring time is over.
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert!(sim.switch.is_idle());
}

#[test]
fn cancel_after_the_200_changes_nothing() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ok = sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    sim.take_media();

    // The CANCEL crossed the 200 on the wire.
    sim.send(phone.addr, phone.cancel());
    sim.expect_response(&phone, 200, "CANCEL");
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());

    sim.send(phone.addr, phone.ack(None));
    sim.assert_quiet();
    sim.digit(LegId(1), '2');
    assert_eq!(
        sim.media(),
        ["stop 1", "play 1 #2 [you-pressed digit-2 thanks-goodbye]"]
    );
    assert_eq!(sim.switch.active_calls(), 1);
}

#[test]
fn retransmitted_invite_while_ringing_resends_the_180_and_makes_no_second_call() {
    let mut sim = Sim::new(SwitchConfig {
        ring: secs(2.0),
        ..config()
    });
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ringing = sim.expect_response(&phone, 180, "INVITE");
    assert_eq!(sim.media(), ["open 1"]);

    sim.advance(secs(0.5));
    sim.send(phone.addr, phone.last_invite.clone());
    let again = sim.expect_response(&phone, 180, "INVITE");
    assert_eq!(again, ringing, "the last response, unchanged");
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);

    sim.advance(secs(1.5));
    let ok = sim.expect_response(&phone, 200, "INVITE");
    assert_eq!(
        ok.to_header().unwrap().tag(),
        ringing.to_header().unwrap().tag()
    );
    assert_eq!(sim.media().len(), 2, "stream and greeting");

    // After the 200 a retransmitted INVITE is absorbed (RFC 6026): the 200 keeps its own
    // retransmission schedule, and still no second call.
    sim.send(phone.addr, phone.last_invite.clone());
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    sim.advance(T1);
    sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    sim.send(phone.addr, phone.ack(None));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());
}

#[test]
fn retransmitted_invite_while_the_port_is_bound_resends_the_100() {
    let mut sim = Sim::new(config());
    sim.auto_open = false;
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    assert_eq!(sim.media(), ["open 1"]);

    sim.advance(T1);
    sim.send(phone.addr, phone.last_invite.clone());
    sim.expect_response(&phone, 100, "INVITE");
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);

    sim.opened(LegId(1));
    sim.expect_response(&phone, 200, "INVITE");
    assert_eq!(sim.media().len(), 2, "stream and greeting");
    sim.assert_quiet();
}

#[test]
fn ok_is_retransmitted_until_the_ack() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ok = sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    sim.take_media();

    sim.advance(secs(12.0));
    // T1, 2·T1, 4·T1, then capped at T2 = 4 s.
    assert_eq!(
        sim.times_of("200 INVITE"),
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5].map(secs)
    );
    for sent in sim.take_wire() {
        assert_eq!(sent.to.addr, phone.addr);
        assert_eq!(sent.message, Message::Response(ok.clone()));
    }
    sim.send(phone.addr, phone.ack(None));
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert_eq!(sim.times_of("200 INVITE").len(), 6);
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());
}

#[test]
fn ok_never_acked_hangs_up_after_64_t1() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    let ok = sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    sim.take_media();

    sim.advance(T1 * 64 - secs(0.001));
    assert_eq!(
        sim.times_of("200 INVITE"),
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5].map(secs)
    );
    assert!(sim.wire().iter().all(|s| s == "200 INVITE"));
    assert!(sim.take_ended().is_empty());

    sim.advance(secs(0.001));
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.log.last().unwrap().at, T1 * 64);
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::NoAck)]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert_eq!(sim.times_of("200 INVITE").len(), 11, "no 200 after 64·T1");
    assert!(sim.switch.is_idle());
}

#[test]
fn our_bye_is_retransmitted_until_timer_f_then_the_call_is_forgotten() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    sim.advance(secs(100.0)); // past Timer L of the INVITE
    sim.assert_quiet();
    sim.digit(call.leg, '0');
    let confirm = play_id(&sim.take_media()[1]);
    sim.play_finished(call.leg, confirm);
    let start = sim.elapsed();
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);

    sim.advance(T1 * 64 - secs(0.001));
    let times: Vec<Duration> = sim
        .times_of("BYE")
        .into_iter()
        .map(|at| at - start)
        .collect();
    assert_eq!(
        times,
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5].map(secs)
    );
    for sent in sim.take_wire() {
        assert_eq!(sent.to.addr, phone.addr);
        assert_eq!(sent.message, Message::Request(bye.clone()));
    }
    assert_eq!(sim.switch.active_calls(), 1, "waiting for the BYE's answer");

    sim.advance(secs(0.001));
    assert_eq!(sim.switch.active_calls(), 0, "forgotten after Timer F");
    assert!(sim.switch.is_idle());
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty(), "the ending was reported once");

    // The caller's answer, far too late, matches nothing.
    sim.send(phone.addr, phone.reply(&bye, 200));
    sim.assert_quiet();
}

#[test]
fn late_offer_gets_our_offer_in_the_200_and_media_starts_with_the_ack() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.send(phone.addr, phone.invite(None));
    sim.expect_response(&phone, 100, "INVITE");
    let ok = sim.expect_response(&phone, 200, "INVITE");
    let offer = sdp_of(&ok);
    let audio = &offer.media[0];
    assert_eq!(audio.formats, ["8", "0", "101"]);
    assert_eq!(audio.rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(audio.rtpmap(0).unwrap().encoding, "PCMU");
    let te = audio.rtpmap(101).unwrap();
    assert_eq!(
        (te.encoding.as_str(), te.clock_rate),
        ("telephone-event", 8000)
    );
    assert_eq!(audio.port, Sim::rtp_port(LegId(1)));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(sim.media(), ["open 1"], "no stream before the answer");

    phone.learn(&ok);
    let answer = caller_sdp(1, &[0, 101], "sendrecv");
    sim.send(phone.addr, phone.ack(Some(&answer)));
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        [
            "stream 1 Pcmu/0 to 198.51.100.7:40000 te=Some(101) send recv",
            "play 1 #1 [greeting] barge-in",
        ]
    );
    let params = stream_params(&media[0]);
    assert_eq!(params.remote, CALLER_RTP.parse::<SocketAddr>().unwrap());
    assert_eq!(params.codec, MediaCodec::Pcmu);
    sim.assert_quiet();
    // The ACK stopped the 200's retransmissions.
    sim.advance(secs(40.0));
    sim.assert_quiet();
    assert_eq!(sim.times_of("200 INVITE").len(), 1);
}

#[test]
fn late_offer_ack_without_an_answer_hangs_up() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.send(phone.addr, phone.invite(None));
    sim.expect_response(&phone, 100, "INVITE");
    let ok = sim.expect_response(&phone, 200, "INVITE");
    phone.learn(&ok);
    assert_eq!(sim.media(), ["open 1"]);

    sim.send(phone.addr, phone.ack(None));
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.media(), ["close 1"], "no stream, no greeting");
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::Refused(488))]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.advance(secs(40.0));
    sim.assert_quiet();
    assert_eq!(sim.times_of("200 INVITE").len(), 1, "the ACK still counted");
}

#[test]
fn reinvite_hold_and_resume() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    let first = sdp_of(&call.ok).origin.session_version;

    // The caller holds us.
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(2, &[8, 0, 101], "sendonly")),
    );
    let ok = sim.expect_reinvite_ok(&phone);
    assert_eq!(ok.headers.get(&HeaderName::Contact), Some(CONTACT));
    let held = sdp_of(&ok);
    assert_eq!(held.media[0].direction(), Some(Direction::RecvOnly));
    assert_eq!(held.origin.session_version, first + 1);
    assert_eq!(held.origin.session_id, sdp_of(&call.ok).origin.session_id);
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) recv"]
    );
    assert!(!stream_params(&media[0]).send);
    sim.send(phone.addr, phone.ack(None));
    sim.assert_quiet();
    // The ACK stops the re-INVITE's 200 like the first one's.
    sim.advance(secs(10.0));
    sim.assert_quiet();

    // The same offer again (a session refresh): the same answer, the same version.
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(2, &[8, 0, 101], "sendonly")),
    );
    let refresh = sdp_of(&sim.expect_reinvite_ok(&phone));
    assert_eq!(refresh.origin.session_version, first + 1);
    assert_eq!(sim.media().len(), 1);
    sim.send(phone.addr, phone.ack(None));

    // Resumed.
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(3, &[8, 0, 101], "sendrecv")),
    );
    let resumed = sdp_of(&sim.expect_reinvite_ok(&phone));
    assert_eq!(resumed.media[0].direction(), Some(Direction::SendRecv));
    assert_eq!(resumed.origin.session_version, first + 2);
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv"]
    );
    assert!(stream_params(&media[0]).send);
    sim.send(phone.addr, phone.ack(None));
    sim.advance(secs(10.0));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());
}

#[test]
fn reinvite_never_acked_hangs_up() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    answered(&mut sim, &mut phone);
    sim.advance(secs(100.0));
    let start = sim.elapsed();
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(2, &[8, 0, 101], "sendonly")),
    );
    sim.expect_reinvite_ok(&phone);
    sim.take_media();
    sim.advance(T1 * 64 - secs(0.001));
    assert_eq!(sim.wire().len(), 10, "the 200 is retransmitted");
    assert!(sim.take_ended().is_empty());
    sim.advance(secs(0.001));
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.log.last().unwrap().at - start, T1 * 64);
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::NoAck)]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert!(sim.switch.is_idle());
}

#[test]
fn a_newer_reinvite_stands_for_the_lost_ack_of_the_older() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    answered(&mut sim, &mut phone);
    sim.advance(secs(100.0));
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(2, &[8, 0, 101], "sendonly")),
    );
    sim.expect_reinvite_ok(&phone);
    // Its ACK is lost; the caller resumes.
    sim.advance(secs(1.0));
    assert_eq!(sim.wire(), ["200 INVITE"], "the 200 is resent at T1");
    sim.send(
        phone.addr,
        phone.reinvite(&caller_sdp(3, &[8, 0, 101], "sendrecv")),
    );
    sim.expect_reinvite_ok(&phone);
    sim.send(phone.addr, phone.ack(None));
    assert_eq!(sim.media().len(), 2, "hold, then resume");
    // Neither 200 is resent any more, and nobody hangs up.
    sim.advance(secs(60.0));
    sim.assert_quiet();
    assert!(sim.take_ended().is_empty());
    assert_eq!(sim.switch.active_calls(), 1);
}

#[test]
fn offerless_reinvite_takes_the_answer_from_the_ack() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    let first = sdp_of(&call.ok).origin.session_version;

    sim.send(phone.addr, phone.in_dialog("INVITE", None));
    let offer = sdp_of(&sim.expect_reinvite_ok(&phone));
    let audio = &offer.media[0];
    assert_eq!(audio.formats, ["8", "0", "101"]);
    assert_eq!(audio.port, Sim::rtp_port(call.leg));
    assert_eq!(offer.origin.session_version, first + 1);
    assert!(sim.media().is_empty(), "nothing changes before the answer");

    // The caller answers in the ACK, holding us.
    let answer = caller_sdp(2, &[8, 101], "sendonly");
    sim.send(phone.addr, phone.ack(Some(&answer)));
    assert_eq!(
        sim.media(),
        ["stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) recv"]
    );
    sim.advance(secs(10.0));
    sim.assert_quiet();

    // An ACK without the answer ends the session.
    sim.send(phone.addr, phone.in_dialog("INVITE", None));
    sim.expect_reinvite_ok(&phone);
    sim.send(phone.addr, phone.ack(None));
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::Refused(488))]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.advance(secs(60.0));
    sim.assert_quiet();
}

#[test]
fn info_dtmf_relay_is_a_key() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    answered(&mut sim, &mut phone);
    let body = "Signal=5\r\nDuration=160\r\n";
    sim.send(
        phone.addr,
        phone.in_dialog("INFO", Some(("application/dtmf-relay", body))),
    );
    sim.expect_response(&phone, 200, "INFO");
    assert_eq!(
        sim.media(),
        ["stop 1", "play 1 #2 [you-pressed digit-5 thanks-goodbye]"]
    );
    sim.assert_quiet();
}

#[test]
fn info_with_another_content_type_gets_415() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    answered(&mut sim, &mut phone);
    sim.send(
        phone.addr,
        phone.in_dialog("INFO", Some(("text/plain", "5"))),
    );
    let refused = sim.expect_response(&phone, 415, "INFO");
    let accept = HeaderName::Other("Accept".into());
    let accepted = refused.headers.get(&accept).unwrap_or_default();
    assert!(
        accepted.contains("application/dtmf-relay"),
        "a 415 names what is accepted: {refused:?}"
    );
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
}

#[test]
fn no_common_codec_gets_488_and_no_port() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    sim.send(
        phone.addr,
        phone.invite(Some(&caller_sdp(1, &[18, 101], "sendrecv"))),
    );
    sim.expect_response(&phone, 100, "INVITE");
    let refused = sim.expect_response(&phone, 488, "INVITE");
    assert!(refused.to_header().unwrap().tag().is_some());
    sim.send(phone.addr, phone.ack_failure(&refused));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 0);
    assert!(sim.take_ended().is_empty(), "no call was created");
}

#[test]
fn wrong_number_gets_404() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7).dialling("12346");
    sim.dial(&mut phone);
    let refused = sim.expect_response(&phone, 404, "INVITE");
    sim.send(phone.addr, phone.ack_failure(&refused));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn malformed_sdp_gets_400() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let broken = "v=0\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\n";
    sim.send(phone.addr, phone.invite(Some(broken)));
    sim.expect_response(&phone, 100, "INVITE");
    let refused = sim.expect_response(&phone, 400, "INVITE");
    sim.send(phone.addr, phone.ack_failure(&refused));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn media_timeout_hangs_up_with_a_reason() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    sim.media_event(MediaEvent::Timeout { leg: call.leg });
    let bye = sim.expect_request(&phone, "BYE");
    assert_eq!(
        bye.headers.get(&HeaderName::Reason),
        Some("SIP;cause=408;text=\"media timeout\"")
    );
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::MediaTimeout)]);
    sim.send(phone.addr, phone.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.assert_quiet();
}

#[test]
fn shutdown_ends_talking_and_ringing_calls_and_refuses_new_ones() {
    let mut sim = Sim::new(SwitchConfig {
        ring: secs(2.0),
        ..config()
    });
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    let mut talking = Phone::new(7);
    sim.send(talking.addr, talking.invite(Some(&offer)));
    sim.advance(secs(2.0));
    assert_eq!(sim.wire(), ["100 INVITE", "180 INVITE", "200 INVITE"]);
    let ok = sim.log.last().unwrap().message.clone();
    let Message::Response(ok) = ok else { panic!() };
    talking.learn(&ok);
    sim.send(talking.addr, talking.ack(None));

    let mut ringing = Phone::new(8);
    sim.send(ringing.addr, ringing.invite(Some(&offer)));
    sim.expect_response(&ringing, 100, "INVITE");
    sim.expect_response(&ringing, 180, "INVITE");
    sim.take_media();
    assert_eq!(sim.switch.active_calls(), 2);

    sim.shutdown();
    let bye = sim.expect_request(&talking, "BYE");
    let refused = sim.expect_response(&ringing, 503, "INVITE");
    assert!(refused.to_header().unwrap().tag().is_some());
    assert_eq!(sim.media(), ["close 1", "close 2"]);
    assert_eq!(
        sim.take_ended(),
        [
            (CallId(1), Ending::Shutdown),
            (CallId(2), Ending::Refused(503))
        ]
    );
    sim.send(ringing.addr, ringing.ack_failure(&refused));
    sim.assert_quiet();

    let mut late = Phone::new(9);
    sim.send(late.addr, late.invite(Some(&offer)));
    sim.expect_response(&late, 100, "INVITE");
    let refused = sim.expect_response(&late, 503, "INVITE");
    assert!(refused
        .headers
        .get(&HeaderName::Other("Retry-After".into()))
        .is_some());
    sim.send(late.addr, late.ack_failure(&refused));
    sim.assert_quiet();

    sim.send(talking.addr, talking.reply(&bye, 200));
    assert_eq!(sim.switch.active_calls(), 0);
    sim.advance(secs(64.0));
    assert!(sim.switch.is_idle(), "shutdown may exit");
    sim.assert_quiet();
}

#[test]
fn max_calls_reached_gets_503_with_retry_after() {
    let mut sim = Sim::new(SwitchConfig {
        max_calls: 1,
        ..config()
    });
    let mut first = Phone::new(7);
    answered(&mut sim, &mut first);
    let mut second = Phone::new(8);
    sim.dial(&mut second);
    let busy = sim.expect_response(&second, 503, "INVITE");
    assert_eq!(
        busy.headers.get(&HeaderName::Other("Retry-After".into())),
        Some("5")
    );
    sim.send(second.addr, second.ack_failure(&busy));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());
}

#[test]
fn in_dialog_request_for_an_unknown_dialog_gets_481() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    phone.to_tag = Some("no-such-tag".to_string());
    phone.target = Some(format!("sip:hotline@{ENGINE_IP}:5060"));
    sim.send(phone.addr, phone.in_dialog("BYE", None));
    sim.expect_response(&phone, 481, "BYE");
    sim.send(
        phone.addr,
        phone.in_dialog("INFO", Some(("application/dtmf-relay", "Signal=1\r\n"))),
    );
    sim.expect_response(&phone, 481, "INFO");
    sim.send(phone.addr, phone.reinvite(&caller_sdp(1, &[8], "sendrecv")));
    sim.expect_response(&phone, 100, "INVITE");
    let gone = sim.expect_response(&phone, 481, "INVITE");
    sim.send(phone.addr, phone.ack_failure(&gone));
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn bye_with_an_old_cseq_gets_500_and_the_call_stays() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    answered(&mut sim, &mut phone);
    sim.send(phone.addr, phone.in_dialog_with_cseq("OPTIONS", 5, None));
    sim.expect_response(&phone, 200, "OPTIONS");
    sim.send(phone.addr, phone.in_dialog_with_cseq("BYE", 3, None));
    sim.expect_response(&phone, 500, "BYE");
    sim.assert_quiet();
    assert_eq!(sim.switch.active_calls(), 1);
    assert!(sim.take_ended().is_empty());

    sim.send(phone.addr, phone.in_dialog_with_cseq("BYE", 6, None));
    sim.expect_response(&phone, 200, "BYE");
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerHungUp)]);
}

#[test]
fn open_failed_gets_503() {
    let mut sim = Sim::new(config());
    sim.auto_open = false;
    let mut phone = Phone::new(7);
    sim.dial(&mut phone);
    assert_eq!(sim.media(), ["open 1"]);
    sim.media_event(MediaEvent::OpenFailed { leg: LegId(1) });
    let refused = sim.expect_response(&phone, 503, "INVITE");
    assert!(refused.to_header().unwrap().tag().is_some());
    assert_eq!(refused.headers.get(&HeaderName::Contact), None);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::Refused(503))]);
    assert_eq!(sim.switch.active_calls(), 0);
    sim.take_media();
    sim.send(phone.addr, phone.ack_failure(&refused));
    sim.assert_quiet();
    sim.advance(secs(40.0));
    sim.assert_quiet();
    assert!(sim.switch.is_idle());
}

// ---------------------------------------------------------------------------------------------
// Dialplans: the number plan, hand-overs and reloads as the caller sees them.
// ---------------------------------------------------------------------------------------------

const PLAN_V1: &str = r#"
[unknown]
prompts = ["unknown-number"]
status = 404

[defaults]
operator = "operator"
queue_fallback = "busy"

[queues.general]
name = "general"
skill = "general"

[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "menu"

[nodes.menu]
menu = ["menu-v1"]
keys = { "1" = "bye-v1" }

[nodes.bye-v1]
hangup = ["bye-v1"]

[nodes.operator]
queue = "general"

[nodes.busy]
hangup = ["busy"]
"#;

/// Answers a call to 12345 on a dialplan plan and returns the leg and the first playback.
fn answered_on_plan(sim: &mut Sim, phone: &mut Phone) -> (LegId, Vec<String>) {
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(phone.addr, phone.invite(Some(&offer)));
    sim.expect_response(phone, 100, "INVITE");
    let ok = sim.expect_response(phone, 200, "INVITE");
    phone.learn(&ok);
    sim.send(phone.addr, phone.ack(None));
    let media = sim.take_media();
    (media[0].leg(), media.iter().map(show).collect())
}

#[test]
fn unknown_number_hears_the_announcement_as_early_media_then_404() {
    let mut sim = Sim::with_plan(config(), plan(&[("12345.toml", PLAN_V1)]));
    let mut phone = Phone::new(7).dialling("99999");
    sim.dial(&mut phone);
    let progress = sim.expect_response(&phone, 183, "INVITE");
    assert_eq!(sdp_of(&progress).media[0].formats, ["8", "101"]);
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        [
            "open 1",
            "stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv",
            "play 1 #1 [unknown-number]",
        ]
    );
    sim.play_finished(LegId(1), play_id(&media[2]));
    let refused = sim.expect_response(&phone, 404, "INVITE");
    assert_eq!(sim.media(), ["close 1"]);
    sim.send(phone.addr, phone.ack_failure(&refused));
    sim.assert_quiet();
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::Refused(404))]);
    assert_eq!(sim.switch.active_calls(), 0);
}

#[test]
fn cancel_during_the_announcement_gets_487() {
    let mut sim = Sim::with_plan(config(), plan(&[("12345.toml", PLAN_V1)]));
    let mut phone = Phone::new(7).dialling("99999");
    sim.dial(&mut phone);
    sim.expect_response(&phone, 183, "INVITE");
    sim.take_media();
    sim.send(phone.addr, phone.cancel());
    sim.expect_response(&phone, 200, "CANCEL");
    let cancelled = sim.expect_response(&phone, 487, "INVITE");
    sim.send(phone.addr, phone.ack_failure(&cancelled));
    assert_eq!(sim.media(), ["close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerCancelled)]);
}

#[test]
fn without_seats_a_queue_hand_over_runs_the_dialplan_fallback() {
    let mut sim = Sim::with_plan(config(), plan(&[("12345.toml", PLAN_V1)]));
    let mut phone = Phone::new(7);
    let (leg, media) = answered_on_plan(&mut sim, &mut phone);
    assert_eq!(media[2], "play 1 #1 [menu-v1] barge-in");
    sim.digit(leg, '0');
    let media = sim.take_media();
    assert_eq!(
        media.iter().map(show).collect::<Vec<_>>(),
        ["stop 1", "play 1 #2 [busy]"],
        "0 reaches the operator's queue, which has no seat yet"
    );
    sim.play_finished(leg, play_id(&media[1]));
    sim.expect_request(&phone, "BYE");
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::FlowDone)]);
}

#[test]
fn after_a_reload_calls_in_progress_keep_their_version() {
    let mut sim = Sim::with_plan(config(), plan(&[("12345.toml", PLAN_V1)]));
    let mut first = Phone::new(7);
    let (first_leg, _) = answered_on_plan(&mut sim, &mut first);
    let v2 = PLAN_V1.replace("-v1", "-v2");
    sim.switch.set_plan(sim.now, plan(&[("12345.toml", &v2)]));
    let mut second = Phone::new(8);
    let (second_leg, media) = answered_on_plan(&mut sim, &mut second);
    assert_eq!(media[2], "play 2 #2 [menu-v2] barge-in");

    sim.digit(first_leg, '1');
    sim.digit(second_leg, '1');
    let played: Vec<String> = sim.take_media().iter().map(show).collect();
    assert_eq!(
        played,
        [
            "stop 1",
            "play 1 #3 [bye-v1]",
            "stop 2",
            "play 2 #4 [bye-v2]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Sub-centres: the call's second leg toward a trunk.
// ---------------------------------------------------------------------------------------------

const PLAN_TRUNK: &str = r#"
[defaults]
operator = "operator"
queue_fallback = "busy"

[queues.general]

[subcentres.tax]
trunk = "198.51.100.9:5062"
number = "12366"

[[numbers]]
number = "12366"
mode = "subcentre"
line = "tax"
subcentre = "tax"

[[numbers]]
number = "12345"
mode = "unified"
line = "12345"
start = "operator"

[nodes.operator]
queue = "general"

[nodes.busy]
hangup = ["busy"]
"#;

/// The sub-centre's PBX at 198.51.100.9:5062.
fn pbx() -> Phone {
    Phone::new(9)
}

/// The PBX's response to the engine's INVITE, tagged, with an SDP answer when 2xx.
pub(super) fn pbx_reply(invite: &Request, status: u16) -> Vec<u8> {
    let mut response = Response::to(invite, status);
    let to = invite
        .headers
        .get(&HeaderName::To)
        .unwrap_or("")
        .to_string();
    response
        .headers
        .set(HeaderName::To, format!("{to};tag=pbx"));
    response
        .headers
        .push(HeaderName::Contact, "<sip:pbx@198.51.100.9:5062>");
    if status == 200 {
        response
            .headers
            .push(HeaderName::ContentType, "application/sdp");
        response.body = b"v=0\r\no=pbx 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\n\
t=0 0\r\nm=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n"
            .to_vec();
    }
    Message::Response(response).to_bytes()
}

/// A call to 12366 answered by the engine, whose INVITE then goes to the PBX.
fn passed_to_the_pbx(sim: &mut Sim, caller: &mut Phone) -> Request {
    let offer = caller_sdp(1, &[8, 0, 101], "sendrecv");
    sim.send(caller.addr, caller.invite(Some(&offer)));
    sim.expect_response(caller, 100, "INVITE");
    let ok = sim.expect_response(caller, 200, "INVITE");
    caller.learn(&ok);
    sim.send(caller.addr, caller.ack(None));
    let invite = sim.expect_request(&pbx(), "INVITE");
    assert_eq!(invite.uri.user.as_deref(), Some("12366"));
    let from = invite.from_header().unwrap();
    assert_eq!(
        from.uri.user.as_deref(),
        Some("13800000000"),
        "the caller's number"
    );
    let offer = SessionDescription::parse(&invite.body).unwrap();
    assert_eq!(offer.media[0].port, Sim::rtp_port(LegId(1).partner()));
    assert_eq!(
        sim.media(),
        [
            "open 1",
            "stream 1 Pcma/8 to 198.51.100.7:40000 te=Some(101) send recv",
            "open 1'",
        ]
    );
    invite
}

/// A call to 12366 on `plan` passed to the PBX: the simulation, the caller and the INVITE the
/// PBX got.
fn to_the_pbx(config: SwitchConfig, plan_text: &str) -> (Sim, Phone, Request) {
    let mut sim = Sim::with_plan(config, plan(&[("tax.toml", plan_text)]));
    let mut caller = Phone::new(7).dialling("12366");
    let invite = passed_to_the_pbx(&mut sim, &mut caller);
    (sim, caller, invite)
}

/// The PBX's in-dialog request after it answered `invite`.
pub(super) fn pbx_request(invite: &Request, method: &str, seq: u32) -> String {
    let to = invite.headers.get(&HeaderName::To).unwrap_or("");
    let from = invite.headers.get(&HeaderName::From).unwrap_or("");
    format!(
        "{method} sip:hotline@192.0.2.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.9:5062;branch=z9hG4bK-pbx-{seq}\r\n\
         From: {to};tag=pbx\r\nTo: {from}\r\nCall-ID: {}\r\nCSeq: {seq} {method}\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        invite.call_id().unwrap()
    )
}

#[test]
fn a_subcentre_number_is_bridged_to_the_trunk_and_ends_with_it() {
    let (mut sim, caller, invite) = to_the_pbx(config(), PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 180));
    sim.assert_quiet();
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    let ack = sim.expect_request(&pbx(), "ACK");
    assert_eq!(ack.uri.to_string(), "sip:pbx@198.51.100.9:5062");
    assert_eq!(
        sim.media(),
        [
            "stream 1' Pcmu/0 to 198.51.100.9:41000 te=Some(101) send recv",
            "stop 1",
            "bridge 1 1'",
        ]
    );
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    sim.expect_request(&pbx(), "ACK");
    sim.assert_quiet();

    sim.send(pbx().addr, pbx_request(&invite, "BYE", 1));
    sim.expect_response(&pbx(), 200, "BYE");
    sim.expect_request(&caller, "BYE");
    assert_eq!(sim.media(), ["close 1'", "close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::SubCentreHungUp)]);
}

#[test]
fn the_caller_hanging_up_ends_the_trunk_leg_with_bye() {
    let (mut sim, mut caller, invite) = to_the_pbx(config(), PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    sim.expect_request(&pbx(), "ACK");
    sim.take_media();
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.expect_response(&caller, 200, "BYE");
    let bye = sim.expect_request(&pbx(), "BYE");
    assert_eq!(bye.to_header().unwrap().tag(), Some("pbx"));
    assert_eq!(sim.media(), ["close 1'", "close 1"]);
    assert_eq!(sim.take_ended(), [(CallId(1), Ending::CallerHungUp)]);
}

#[test]
fn a_busy_subcentre_sends_the_caller_to_the_fallback() {
    let (mut sim, _caller, invite) = to_the_pbx(config(), PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 486));
    sim.expect_request(&pbx(), "ACK");
    assert_eq!(
        sim.media(),
        ["close 1'", "play 1 #1 [busy]"],
        "operator, whose queue has no seat yet, then its fallback"
    );
}

#[test]
fn a_subcentre_that_only_rings_is_cancelled_and_the_caller_goes_on() {
    let (mut sim, _caller, invite) = to_the_pbx(config(), PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 180));
    sim.advance(secs(29.9));
    sim.assert_quiet();
    sim.advance(secs(0.1));
    let cancel = sim.expect_request(&pbx(), "CANCEL");
    assert_eq!(cancel.cseq().unwrap().seq, 1);
    assert_eq!(sim.media(), ["close 1'", "play 1 #1 [busy]"]);
    sim.send(pbx().addr, pbx().reply(&cancel, 200));
    sim.send(pbx().addr, pbx_reply(&invite, 487));
    sim.expect_request(&pbx(), "ACK");
    sim.assert_quiet();
}

#[test]
fn a_challenging_subcentre_gets_the_invite_again_with_credentials() {
    let with_credentials = PLAN_TRUNK.replace(
        "trunk = \"198.51.100.9:5062\"",
        "trunk = \"198.51.100.9:5062\"\nusername = \"hotline\"\npassword = \"secret\"",
    );
    let (mut sim, _caller, invite) = to_the_pbx(config(), &with_credentials);
    let mut challenge = Response::to(&invite, 407);
    let to = invite
        .headers
        .get(&HeaderName::To)
        .unwrap_or("")
        .to_string();
    challenge
        .headers
        .set(HeaderName::To, format!("{to};tag=pbx"));
    challenge.headers.push(
        HeaderName::Other("Proxy-Authenticate".into()),
        "Digest realm=\"tax\", nonce=\"n0nce\", qop=\"auth\"",
    );
    sim.send(pbx().addr, Message::Response(challenge).to_bytes());
    sim.expect_request(&pbx(), "ACK");
    let again = sim.expect_request(&pbx(), "INVITE");
    assert_eq!(again.cseq().unwrap().seq, 2);
    assert_eq!(again.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(
        again.from_header().unwrap().tag(),
        invite.from_header().unwrap().tag()
    );
    let auth = again
        .headers
        .get(&HeaderName::Other("Proxy-Authorization".into()))
        .expect("credentials");
    for part in [
        "username=\"hotline\"",
        "realm=\"tax\"",
        "nonce=\"n0nce\"",
        "uri=\"sip:12366@198.51.100.9:5062\"",
        "qop=auth",
    ] {
        assert!(auth.contains(part), "{part} in {auth}");
    }
    sim.send(pbx().addr, pbx_reply(&again, 200));
    let ack = sim.expect_request(&pbx(), "ACK");
    assert_eq!(
        ack.cseq().unwrap().seq,
        2,
        "the ACK repeats the INVITE's CSeq"
    );
    assert!(sim.media().contains(&"bridge 1 1'".to_string()));
}

#[test]
fn a_closed_subcentre_is_not_called_and_the_caller_goes_on() {
    // The simulation's clock reads Monday 10:00; this sub-centre only works nights.
    let night_only = PLAN_TRUNK.replacen(
        "number = \"12366\"\n",
        "number = \"12366\"\nalways_open = false\nschedule = \"night\"\n\n[schedules.night]\nhours = [\"mon-sun 22:00-06:00\"]\n",
        1,
    );
    let mut sim = Sim::with_plan(config(), plan(&[("tax.toml", &night_only)]));
    let mut caller = Phone::new(7).dialling("12366");
    sim.dial(&mut caller);
    let ok = sim.expect_response(&caller, 200, "INVITE");
    caller.learn(&ok);
    sim.send(caller.addr, caller.ack(None));
    let media = sim.media();
    assert_eq!(media.last().map(String::as_str), Some("play 1 #1 [busy]"));
    assert!(
        !media.iter().any(|m| m.contains("1'")),
        "no trunk leg: {media:?}"
    );
    sim.assert_quiet();
}

// ---------------------------------------------------------------------------------------------
// Call records: one per call, whatever happened to it.
// ---------------------------------------------------------------------------------------------

impl Sim {
    /// The final records handed out so far.
    pub(super) fn final_records(&self) -> Vec<&CallRecord> {
        self.records.iter().filter(|r| r.is_finished()).collect()
    }
}

#[test]
fn a_call_through_the_dialplan_leaves_one_complete_record() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7);
    let call = answered(&mut sim, &mut phone);
    assert_eq!(
        sim.records.len(),
        2,
        "progress rows when the call arrives and is answered"
    );
    assert!(!sim.records[0].is_finished());
    assert_eq!(sim.records[0].times.answered, None);
    assert!(sim.records[1].times.answered.is_some());
    assert_eq!(
        sim.records[0].hotline.as_deref(),
        Some("12345 first flow (test)")
    );
    sim.advance(secs(1.5));
    sim.digit(call.leg, '7');
    let media = sim.take_media();
    sim.advance(secs(2.0));
    sim.play_finished(call.leg, play_id(&media[1]));
    let bye = sim.expect_request(&phone, "BYE");
    sim.send(phone.addr, phone.reply(&bye, 200));

    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    let record = records[0];
    assert_eq!(
        record.id, sim.records[0].id,
        "the same id from start to end"
    );
    assert_eq!(record.caller.number, "13800000000");
    assert_eq!(record.dialled, "12345");
    assert_eq!(record.hotline.as_deref(), Some("12345 first flow (test)"));
    assert_eq!(record.merge_mode.as_deref(), Some("unified"));
    assert_eq!(record.sip_call_ids, [phone.call_id.clone()]);
    let steps: Vec<(&str, Option<&str>)> = record
        .navigation
        .iter()
        .map(|s| (s.node.as_str(), s.input.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            ("greeting", None),
            ("greeting", Some("7")),
            ("pressed-7", None)
        ]
    );
    let times = &record.times;
    let answered = times.answered.expect("answered");
    let ended = times.ended.expect("ended");
    assert_eq!((ended - times.arrived).num_milliseconds(), 3500);
    assert_eq!(
        (record.navigation[1].at - answered).num_milliseconds(),
        1500
    );
    assert_eq!(
        record.wait_s, 3.5,
        "no person answered: the whole call was waiting"
    );
    assert_eq!(record.talk_s, 0.0);
    let end = record.end.as_ref().expect("an end");
    assert_eq!(
        (end.by.as_str(), end.cause.as_str()),
        ("engine", "dialplan")
    );
    assert_eq!(sim.switch.active_calls(), 0);
    assert_eq!(
        sim.switch.unsaved_records(),
        0,
        "the fake store acknowledged it"
    );
}

#[test]
fn refused_and_cancelled_calls_leave_records_too() {
    let mut sim = Sim::new(config());
    let mut phone = Phone::new(7).dialling("99999");
    sim.send(
        phone.addr,
        phone.invite(Some(&caller_sdp(1, &[8, 0, 101], "sendrecv"))),
    );
    let mut ringing = Phone::new(8);
    let mut config = config();
    config.ring = secs(10.0);
    let mut slow = Sim::new(config);
    slow.send(
        ringing.addr,
        ringing.invite(Some(&caller_sdp(1, &[8, 0, 101], "sendrecv"))),
    );
    slow.send(ringing.addr, ringing.cancel());

    let refused = sim.final_records();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].dialled, "99999");
    let end = refused[0].end.as_ref().expect("an end");
    assert_eq!((end.cause.as_str(), end.sip_status), ("refused", Some(404)));
    let cancelled = slow.final_records();
    assert_eq!(cancelled.len(), 1);
    let end = cancelled[0].end.as_ref().expect("an end");
    assert_eq!((end.by.as_str(), end.cause.as_str()), ("caller", "cancel"));
    assert_eq!(cancelled[0].times.answered, None);
}

#[test]
fn a_subcentre_call_records_the_transfer_and_the_talk() {
    let (mut sim, _caller, invite) = to_the_pbx(config(), PLAN_TRUNK);
    sim.advance(secs(2.0));
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    sim.advance(secs(30.0));
    sim.send(pbx().addr, pbx_request(&invite, "BYE", 1));
    let records = sim.final_records();
    let record = records[0];
    assert_eq!(record.transfers.len(), 1);
    let transfer = &record.transfers[0];
    assert_eq!(transfer.target, "tax");
    assert_eq!(transfer.outcome.as_deref(), Some("answered"));
    assert_eq!(
        (&transfer.by, &transfer.seat),
        (&None, &None),
        "the dialplan's"
    );
    assert_eq!(record.wait_s, 2.0);
    assert_eq!(record.talk_s, 30.0);
    assert_eq!(
        record.end.as_ref().map(|e| e.by.as_str()),
        Some("subcentre")
    );
    assert_eq!(record.tags.get("topic"), None);
}

#[test]
fn a_bridged_call_is_recorded_and_its_record_waits_for_the_wav() {
    let mut config = config();
    config.recordings = Some(std::path::PathBuf::from("/data/recordings"));
    let (mut sim, mut caller, invite) = to_the_pbx(config, PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    sim.expect_request(&pbx(), "ACK");
    let id = sim.records.last().map(|r| r.id.clone()).unwrap_or_default();
    let media = sim.media();
    assert_eq!(
        media.last().map(String::as_str),
        Some(format!("record 1 /data/recordings/2026-10-12/{id}.wav").as_str()),
        "the local date names the folder: {media:?}"
    );
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    assert!(
        sim.final_records().is_empty(),
        "held until the WAV is closed"
    );
    assert_eq!(sim.switch.unsaved_records(), 1);
    sim.media_event(MediaEvent::RecordingDone {
        leg: LegId(1),
        path: format!("/data/recordings/2026-10-12/{id}.wav").into(),
        seconds: 1.0,
        error: Some("No space left on device".into()),
    });
    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    let recording = &records[0].recordings[0];
    assert_eq!(recording.path, format!("recordings/2026-10-12/{id}.wav"));
    assert_eq!(recording.status, "failed: No space left on device");
    assert_eq!(sim.switch.unsaved_records(), 0);
}

#[test]
fn a_recorder_that_never_reports_does_not_hold_the_record_for_ever() {
    let mut config = config();
    config.recordings = Some(std::path::PathBuf::from("/data/recordings"));
    let (mut sim, mut caller, invite) = to_the_pbx(config, PLAN_TRUNK);
    sim.send(pbx().addr, pbx_reply(&invite, 200));
    sim.expect_request(&pbx(), "ACK");
    sim.send(caller.addr, caller.in_dialog("BYE", None));
    sim.advance(secs(10.0));
    let records = sim.final_records();
    assert_eq!(records.len(), 1);
    assert!(records[0].recordings[0].status.starts_with("unknown"));
}
