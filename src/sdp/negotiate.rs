//! Offer/answer (RFC 3264) for a G.711-only endpoint, as pure functions.
//!
//! Rules:
//! - Only one audio stream is used: the first `audio` m-line over plain `RTP/AVP` with a non-zero
//!   port. Every other m-line (video, SRTP audio, further audio) is rejected in the answer with
//!   port 0, keeping its position, media type, protocol and formats.
//! - Codec choice in an answer follows the offerer's order (RFC 3264 §6.1 says the answerer
//!   should): the first payload type in the offer's format list that maps to a codec in
//!   [`LocalMedia::codecs`]. Our own preference order only decides the order in our offers.
//! - The answer lists just the chosen codec (plus telephone-event), with the offerer's payload
//!   type numbers, so the media layer never has to switch codecs mid-stream.
//! - telephone-event is taken if both sides support it, at the offerer's payload type number.

use super::codec::{Codec, PayloadFormat, TELEPHONE_EVENT_PAYLOAD_TYPE};
use super::direction::Direction;
use super::error::NegotiationError;
use super::local::{Answer, LocalMedia, MediaParams};
use super::session::{MediaDescription, SessionDescription};
use std::net::SocketAddr;
use std::ops::RangeInclusive;

/// The dynamic RTP payload type range (RFC 3551).
const DYNAMIC_PAYLOAD_TYPES: RangeInclusive<u8> = 96..=127;

/// Answers an offer: picks the audio stream, codec and telephone-event, and builds our answer.
///
/// Errors: no audio m-line → [`NegotiationError::NoAudio`]; audio only over other transports
/// (e.g. `RTP/SAVP`) → [`NegotiationError::UnsupportedTransport`]; audio rejected (port 0) or no
/// common codec → [`NegotiationError::NoCommonCodec`]. The engine answers all of them with 488.
/// The answer carries `local.session_id`/`local.session_version` as they are; use
/// [`super::SdpSession`] to have the version bumped when the content changes.
pub fn answer(offer: &SessionDescription, local: &LocalMedia) -> Result<Answer, NegotiationError> {
    let index = select_audio(offer)?;
    let theirs = &offer.media[index];
    let address = offer
        .connection_of(theirs)
        .ok_or(NegotiationError::MissingConnection)?;
    let (payload_type, codec) = first_common_codec(theirs, &local.offered_codecs())
        .ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = if local.telephone_event {
        telephone_event_of(theirs)
    } else {
        None
    };
    let remote_direction = offer.effective_direction(theirs);
    let local_direction = Direction::answer_to(remote_direction, local.direction);

    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                local.audio_media(&[(payload_type, codec)], telephone_event, local_direction)
            } else {
                m.rejected()
            }
        })
        .collect();
    Ok(Answer {
        sdp: local.description(media),
        media: MediaParams {
            remote_rtp: SocketAddr::new(address, theirs.port),
            codec,
            payload_type,
            telephone_event,
            remote_direction,
            local_direction,
            ptime: theirs.ptime(),
        },
    })
}

/// Builds a fresh offer: one audio stream with our codecs (static payload types, in our
/// preference order), telephone-event at 101 if enabled, our ptime and direction.
///
/// Used for late offer (INVITE without SDP, we offer in the 200 OK) and for outgoing legs.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    local.description(vec![our_audio(local, None)])
}

/// Builds a subsequent offer in a session (e.g. a hold or resume re-INVITE).
///
/// Keeps the m-line layout of `previous` (the last description we sent): the audio stream stays
/// at its position and reuses its payload type numbers (RFC 3264 §8.3.2), every other m-line is
/// kept disabled with port 0, so the number of m-lines never decreases (RFC 3264 §8).
pub fn reoffer(previous: &SessionDescription, local: &LocalMedia) -> SessionDescription {
    let mut media: Vec<MediaDescription> = previous.media.iter().map(|m| m.rejected()).collect();
    match previous.first_rtp_audio() {
        Some(i) => {
            let fresh = our_audio(local, previous.media.get(i));
            if let Some(slot) = media.get_mut(i) {
                *slot = fresh;
            }
        }
        None => media.push(our_audio(local, None)),
    }
    local.description(media)
}

/// Reads the peer's answer to an offer we sent and returns the negotiated audio stream.
///
/// The chosen codec is the first one in the answer's list that we offered, at the answer's
/// payload type number. Errors as in [`answer`]; the answer lacking our audio m-line gives
/// [`NegotiationError::NoAudio`].
pub fn accept_answer(
    offer_we_sent: &SessionDescription,
    answer: &SessionDescription,
) -> Result<MediaParams, NegotiationError> {
    let index = offer_we_sent
        .first_rtp_audio()
        .ok_or(NegotiationError::NoAudio)?;
    let ours = &offer_we_sent.media[index];
    let theirs = answer
        .media
        .get(index)
        .filter(|m| m.is_audio())
        .ok_or(NegotiationError::NoAudio)?;
    if theirs.port == 0 {
        return Err(NegotiationError::NoCommonCodec);
    }
    if !theirs.is_rtp_avp() {
        return Err(NegotiationError::UnsupportedTransport(theirs.proto.clone()));
    }
    let address = answer
        .connection_of(theirs)
        .ok_or(NegotiationError::MissingConnection)?;
    let offered: Vec<Codec> = ours
        .payload_types()
        .filter_map(|pt| match ours.payload_format(pt) {
            PayloadFormat::Audio(c) => Some(c),
            _ => None,
        })
        .collect();
    let (payload_type, codec) =
        first_common_codec(theirs, &offered).ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = telephone_event_of(ours).and(telephone_event_of(theirs));
    let remote_direction = answer.effective_direction(theirs);
    let local_direction = offer_we_sent
        .effective_direction(ours)
        .intersect(remote_direction.reverse());
    Ok(MediaParams {
        remote_rtp: SocketAddr::new(address, theirs.port),
        codec,
        payload_type,
        telephone_event,
        remote_direction,
        local_direction,
        ptime: theirs.ptime(),
    })
}

/// Picks the audio m-line of an offer (see the module documentation).
fn select_audio(offer: &SessionDescription) -> Result<usize, NegotiationError> {
    let mut audio = offer.media.iter().filter(|m| m.is_audio()).peekable();
    let first = audio.peek().ok_or(NegotiationError::NoAudio)?;
    let first_proto = first.proto.clone();
    if !audio.any(|m| m.is_rtp_avp()) {
        return Err(NegotiationError::UnsupportedTransport(first_proto));
    }
    offer
        .first_rtp_audio()
        .ok_or(NegotiationError::NoCommonCodec)
}

/// The first payload type of `media` (in its order) that maps to one of `accepted`.
fn first_common_codec(media: &MediaDescription, accepted: &[Codec]) -> Option<(u8, Codec)> {
    media
        .payload_types()
        .find_map(|pt| match media.payload_format(pt) {
            PayloadFormat::Audio(c) if accepted.contains(&c) => Some((pt, c)),
            _ => None,
        })
}

/// The first telephone-event (8000 Hz) payload type of `media`.
fn telephone_event_of(media: &MediaDescription) -> Option<u8> {
    media
        .payload_types()
        .find(|pt| media.payload_format(*pt) == PayloadFormat::TelephoneEvent)
}

/// Our offered audio m-line, reusing the payload type numbers of `previous` where it had them.
fn our_audio(local: &LocalMedia, previous: Option<&MediaDescription>) -> MediaDescription {
    let reused = |wanted: PayloadFormat| {
        previous.and_then(|m| m.payload_types().find(|pt| m.payload_format(*pt) == wanted))
    };
    // Numbers the previous description used: never give them a new meaning.
    let mut taken: Vec<u8> = previous
        .map(|m| m.payload_types().collect())
        .unwrap_or_default();
    let mut pick = |reuse: Option<u8>, default: u8| match reuse {
        Some(pt) => pt,
        None => {
            let pt = std::iter::once(default)
                .chain(DYNAMIC_PAYLOAD_TYPES)
                .find(|pt| !taken.contains(pt))
                .unwrap_or(default);
            taken.push(pt);
            pt
        }
    };
    let codecs: Vec<(u8, Codec)> = local
        .offered_codecs()
        .into_iter()
        .map(|c| {
            (
                pick(reused(PayloadFormat::Audio(c)), c.static_payload_type()),
                c,
            )
        })
        .collect();
    let telephone_event = local.telephone_event.then(|| {
        pick(
            reused(PayloadFormat::TelephoneEvent),
            TELEPHONE_EVENT_PAYLOAD_TYPE,
        )
    });
    local.audio_media(&codecs, telephone_event, local.direction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::fixtures;
    use std::net::IpAddr;

    const OUR_IP: &str = "192.0.2.10";

    fn local() -> LocalMedia {
        LocalMedia::new(ip(OUR_IP), 20000, 4242)
    }

    fn ip(text: &str) -> IpAddr {
        match text.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("{e}"),
        }
    }

    fn parse(text: &str) -> SessionDescription {
        match SessionDescription::parse(text.as_bytes()) {
            Ok(sdp) => sdp,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    fn answer_ok(text: &str, local: &LocalMedia) -> Answer {
        match answer(&parse(text), local) {
            Ok(a) => a,
            Err(e) => panic!("{e}\n{text}"),
        }
    }

    fn answer_err(text: &str, local: &LocalMedia) -> NegotiationError {
        match answer(&parse(text), local) {
            Ok(a) => panic!("unexpected answer\n{}", a.sdp),
            Err(e) => e,
        }
    }

    /// Checks that the answer SDP re-parses and describes what `MediaParams` says.
    fn check_answer_consistent(offer_text: &str, a: &Answer) {
        let printed = a.sdp.to_string();
        let reparsed = parse(&printed);
        assert_eq!(reparsed, a.sdp);
        let offer = parse(offer_text);
        assert_eq!(reparsed.media.len(), offer.media.len());
        let Ok(seen_by_peer) = accept_answer(&offer, &reparsed) else {
            panic!("offerer could not read our answer\n{printed}");
        };
        assert_eq!(seen_by_peer.remote_rtp, SocketAddr::new(ip(OUR_IP), 20000));
        assert_eq!(seen_by_peer.codec, a.media.codec);
        assert_eq!(seen_by_peer.payload_type, a.media.payload_type);
        assert_eq!(seen_by_peer.telephone_event, a.media.telephone_event);
        assert_eq!(seen_by_peer.remote_direction, a.media.local_direction);
    }

    #[test]
    fn pcmu_only_offer_gets_pcmu() {
        let a = answer_ok(fixtures::SIPP_PCMU, &local());
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcmu, 0));
        assert_eq!(a.media.remote_rtp, SocketAddr::new(ip("127.0.0.1"), 6000));
        assert_eq!(a.media.telephone_event, None);
        assert_eq!(a.media.ptime, None);
        let text = a.sdp.to_string();
        assert!(text.contains("\r\nm=audio 20000 RTP/AVP 0\r\n"), "{text}");
        assert!(text.contains("\r\nc=IN IP4 192.0.2.10\r\n"), "{text}");
        assert!(text.contains("o=- 4242 1 IN IP4 192.0.2.10\r\n"), "{text}");
        assert!(text.contains("a=sendrecv\r\n"), "{text}");
        check_answer_consistent(fixtures::SIPP_PCMU, &a);
    }

    #[test]
    fn offerer_order_wins() {
        let a = answer_ok(fixtures::CARRIER_TRUNK, &local());
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcma, 8));
        assert_eq!(a.media.telephone_event, Some(96));
        assert_eq!(a.media.ptime, Some(20));
        assert_eq!(a.media.remote_rtp, SocketAddr::new(ip("10.10.1.20"), 30000));
        let text = a.sdp.to_string();
        assert!(text.contains("m=audio 20000 RTP/AVP 8 96\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"));
        check_answer_consistent(fixtures::CARRIER_TRUNK, &a);

        // PCMU listed before PCMA: PCMU, although we would prefer PCMA in our own offers.
        let a = answer_ok(fixtures::BARESIP, &local());
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcmu, 0));
        assert_eq!(a.media.telephone_event, Some(101));
        check_answer_consistent(fixtures::BARESIP, &a);

        let a = answer_ok(fixtures::BARE_0_8_101, &local());
        assert_eq!(
            (a.media.codec, a.media.telephone_event),
            (Codec::Pcmu, Some(101))
        );
    }

    #[test]
    fn local_codec_list_restricts() {
        let mut only_pcma = local();
        only_pcma.codecs = vec![Codec::Pcma];
        let a = answer_ok(fixtures::BARESIP, &only_pcma);
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcma, 8));
        assert_eq!(
            answer_err(fixtures::SIPP_PCMU, &only_pcma),
            NegotiationError::NoCommonCodec
        );
    }

    #[test]
    fn no_common_codec() {
        assert_eq!(
            answer_err(fixtures::G729_ONLY, &local()),
            NegotiationError::NoCommonCodec
        );
        let rejected = fixtures::SIPP_PCMU.replace("m=audio 6000", "m=audio 0");
        assert_eq!(
            answer_err(&rejected, &local()),
            NegotiationError::NoCommonCodec
        );
        let pcma_wideband = fixtures::SIPP_PCMU
            .replace("RTP/AVP 0", "RTP/AVP 96")
            .replace("rtpmap:0 PCMU/8000", "rtpmap:96 PCMA/16000");
        assert_eq!(
            answer_err(&pcma_wideband, &local()),
            NegotiationError::NoCommonCodec
        );
    }

    #[test]
    fn telephone_event_presence() {
        let mut no_te = local();
        no_te.telephone_event = false;
        let a = answer_ok(fixtures::CARRIER_TRUNK, &no_te);
        assert_eq!(a.media.telephone_event, None);
        assert!(!a.sdp.to_string().contains("telephone-event"));
        // Offered only at 48 kHz / 16 kHz: not usable.
        let wideband_only = fixtures::LINPHONE_VIDEO.replace(" 99 100\r\n", " 99\r\n");
        let a = answer_ok(&wideband_only, &local());
        assert_eq!(a.media.telephone_event, None);
    }

    #[test]
    fn video_is_rejected_and_audio_kept() {
        let a = answer_ok(fixtures::LINPHONE_VIDEO, &local());
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcmu, 0));
        assert_eq!(a.media.telephone_event, Some(100));
        assert_eq!(a.sdp.media.len(), 2);
        assert_eq!(a.sdp.media[1].port, 0);
        assert_eq!(a.sdp.media[1].media, "video");
        assert!(a
            .sdp
            .to_string()
            .contains("\r\nm=video 0 RTP/AVP 96 97\r\n"));
        check_answer_consistent(fixtures::LINPHONE_VIDEO, &a);
    }

    #[test]
    fn audio_selection() {
        let video_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\n\
            m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        assert_eq!(answer_err(video_only, &local()), NegotiationError::NoAudio);
        let no_media = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\n";
        assert_eq!(answer_err(no_media, &local()), NegotiationError::NoAudio);
        let srtp = fixtures::SIPP_PCMU.replace("RTP/AVP", "RTP/SAVP");
        assert_eq!(
            answer_err(&srtp, &local()),
            NegotiationError::UnsupportedTransport("RTP/SAVP".to_owned())
        );
        // SRTP and plain RTP offered side by side: the plain one is used, SRTP rejected.
        let both = format!(
            "{}m=audio 6002 RTP/AVP 8\r\n",
            fixtures::SIPP_PCMU.replace("RTP/AVP", "RTP/SAVP")
        );
        let a = answer_ok(&both, &local());
        assert_eq!(a.media.remote_rtp.port(), 6002);
        assert_eq!((a.sdp.media[0].port, a.sdp.media[1].port), (0, 20000));
    }

    #[test]
    fn dynamic_pcmu_and_media_level_address() {
        let a = answer_ok(fixtures::DYNAMIC_PCMU, &local());
        assert_eq!((a.media.codec, a.media.payload_type), (Codec::Pcmu, 110));
        assert_eq!(a.media.telephone_event, Some(111));
        assert_eq!(a.media.remote_rtp, SocketAddr::new(ip("10.1.1.1"), 4000));
        assert!(a.sdp.to_string().contains("a=rtpmap:110 PCMU/8000\r\n"));
        check_answer_consistent(fixtures::DYNAMIC_PCMU, &a);
    }

    #[test]
    fn direction_answers() {
        let a = answer_ok(fixtures::LINPHONE_HOLD, &local());
        assert_eq!(a.media.remote_direction, Direction::SendOnly);
        assert_eq!(a.media.local_direction, Direction::RecvOnly);
        assert_eq!(a.sdp.media[0].direction(), Some(Direction::RecvOnly));
        assert!(a.media.held_by_remote());
        assert!(!a.media.should_send());

        let a = answer_ok(fixtures::OLD_STYLE_HOLD, &local());
        assert_eq!(a.media.remote_rtp.ip(), ip("0.0.0.0"));
        assert_eq!(a.media.local_direction, Direction::RecvOnly);
        assert!(a.media.held_by_remote());
        assert!(!a.media.should_send());

        let inactive = fixtures::LINPHONE_HOLD.replace("sendonly", "inactive");
        let a = answer_ok(&inactive, &local());
        assert_eq!(a.sdp.media[0].direction(), Some(Direction::Inactive));

        let recvonly = fixtures::LINPHONE_HOLD.replace("sendonly", "recvonly");
        let a = answer_ok(&recvonly, &local());
        assert_eq!(a.media.local_direction, Direction::SendOnly);
        assert!(!a.media.held_by_remote());
        assert!(a.media.should_send());

        let mut holding = local();
        holding.direction = Direction::SendOnly;
        let a = answer_ok(fixtures::CARRIER_TRUNK, &holding);
        assert_eq!(a.sdp.media[0].direction(), Some(Direction::SendOnly));
        let a = answer_ok(fixtures::LINPHONE_HOLD, &holding);
        assert_eq!(a.sdp.media[0].direction(), Some(Direction::Inactive));
    }

    #[test]
    fn our_offer() {
        let sdp = offer(&local());
        let text = sdp.to_string();
        let expected = "v=0\r\n\
o=- 4242 1 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        assert_eq!(text, expected);
        assert_eq!(parse(&text), sdp);

        let mut v6 = LocalMedia::new(ip("2001:db8::10"), 30000, 7);
        v6.codecs = vec![Codec::Pcmu, Codec::Pcmu];
        v6.telephone_event = false;
        v6.ptime = None;
        let text = offer(&v6).to_string();
        assert!(text.contains("c=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n"));

        let mut empty = local();
        empty.codecs.clear();
        assert!(offer(&empty).to_string().contains("RTP/AVP 8 0 101\r\n"));
    }

    fn peer_answer(media: &str) -> SessionDescription {
        parse(&format!(
            "v=0\r\no=peer 9 9 IN IP4 198.51.100.7\r\ns=-\r\n\
             c=IN IP4 198.51.100.7\r\nt=0 0\r\n{media}"
        ))
    }

    #[test]
    fn accepting_answers() {
        let ours = offer(&local());
        let pcmu = "m=audio 8000 RTP/AVP 0 101\r\n\
            a=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n";
        let p = accept_answer(&ours, &peer_answer(pcmu));
        let Ok(p) = p else { panic!("{p:?}") };
        assert_eq!(
            (p.codec, p.payload_type, p.telephone_event),
            (Codec::Pcmu, 0, Some(101))
        );
        assert_eq!(p.remote_rtp, SocketAddr::new(ip("198.51.100.7"), 8000));
        assert_eq!(
            (p.ptime, p.local_direction),
            (Some(30), Direction::SendRecv)
        );

        // Dynamic numbers in the answer are what we must send with.
        let dynamic = "m=audio 8000 RTP/AVP 98 97\r\n\
            a=rtpmap:98 PCMA/8000\r\na=rtpmap:97 telephone-event/8000\r\n";
        let p = accept_answer(&ours, &peer_answer(dynamic));
        assert_eq!(
            p.map(|p| (p.payload_type, p.telephone_event)),
            Ok((98, Some(97)))
        );

        let p = accept_answer(
            &ours,
            &peer_answer("m=audio 8000 RTP/AVP 8\r\na=sendonly\r\n"),
        );
        let Ok(p) = p else { panic!("{p:?}") };
        assert_eq!(p.telephone_event, None);
        assert!(p.held_by_remote());
        assert_eq!(p.local_direction, Direction::RecvOnly);

        let errors = [
            (
                "m=audio 8000 RTP/AVP 18\r\n",
                NegotiationError::NoCommonCodec,
            ),
            ("m=audio 0 RTP/AVP 8\r\n", NegotiationError::NoCommonCodec),
            ("m=video 8000 RTP/AVP 96\r\n", NegotiationError::NoAudio),
            ("", NegotiationError::NoAudio),
        ];
        for (media, expected) in errors {
            assert_eq!(
                accept_answer(&ours, &peer_answer(media)),
                Err(expected),
                "{media}"
            );
        }
        // A codec we did not offer is not accepted even if we could decode it.
        let mut pcma_only = local();
        pcma_only.codecs = vec![Codec::Pcma];
        let p = accept_answer(
            &offer(&pcma_only),
            &peer_answer("m=audio 8000 RTP/AVP 0\r\n"),
        );
        assert_eq!(p, Err(NegotiationError::NoCommonCodec));
    }

    #[test]
    fn reoffer_keeps_layout_and_numbers() {
        let a = answer_ok(fixtures::LINPHONE_VIDEO, &local());
        let mut holding = local();
        holding.direction = Direction::SendOnly;
        let re = reoffer(&a.sdp, &holding);
        assert_eq!(re.media.len(), 2);
        assert_eq!(re.media[1].port, 0);
        let audio = &re.media[0];
        assert_eq!(audio.formats, vec!["8", "0", "100"]);
        assert_eq!(audio.payload_format(100), PayloadFormat::TelephoneEvent);
        assert_eq!(audio.direction(), Some(Direction::SendOnly));

        // A previous dynamic mapping is kept and never given a new meaning.
        let a = answer_ok(
            &fixtures::DYNAMIC_PCMU
                .replace("110 111", "101 111")
                .replace("rtpmap:110", "rtpmap:101"),
            &local(),
        );
        let re = reoffer(&a.sdp, &local());
        let audio = &re.media[0];
        assert_eq!(audio.payload_format(101), PayloadFormat::Audio(Codec::Pcmu));
        assert_eq!(audio.payload_format(111), PayloadFormat::TelephoneEvent);
        assert_eq!(audio.formats, vec!["8", "101", "111"]);

        let mut no_te = local();
        no_te.telephone_event = false;
        let a = answer_ok(
            &fixtures::DYNAMIC_PCMU
                .replace("110 111", "101")
                .replace("rtpmap:110", "rtpmap:101"),
            &no_te,
        );
        let re = reoffer(&a.sdp, &local());
        let formats: Vec<u8> = re.media[0].payload_types().collect();
        assert_eq!(formats, vec![8, 101, 96]);
        assert_eq!(
            re.media[0].payload_format(96),
            PayloadFormat::TelephoneEvent
        );
    }
}
