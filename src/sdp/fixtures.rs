//! Realistic SDP bodies for the unit tests of this module.

/// SIPp's built-in `uac` scenario: PCMU only, with rtpmap for the static type.
pub const SIPP_PCMU: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A bare offer without rtpmap for static types, LF line ends only (some test tools).
pub const BARE_0_8_101: &str = "v=0\n\
o=- 1 1 IN IP4 10.0.0.5\n\
s=call\n\
c=IN IP4 10.0.0.5\n\
t=0 0\n\
m=audio 6000 RTP/AVP 0 8 101\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n";

/// baresip with Opus, G.722 and G.711, telephone-event at 101.
pub const BARESIP: &str = "v=0\r\n\
o=- 1681903227 2406426009 IN IP4 192.168.1.23\r\n\
s=-\r\n\
c=IN IP4 192.168.1.23\r\n\
t=0 0\r\n\
m=audio 10078 RTP/AVP 96 9 0 8 101\r\n\
b=AS:128\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-rsize\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ssrc:1937186183 cname:6fc1a0a8-5bc4-4df2-8d7c-7e4fc5a4d1e2\r\n\
a=ptime:20\r\n";

/// A carrier IMS trunk (softswitch style): PCMA first, G.729, telephone-event at 96.
pub const CARRIER_TRUNK: &str = "v=0\r\n\
o=SoftX3000 105472 105472 IN IP4 10.10.1.5\r\n\
s=SipCall\r\n\
c=IN IP4 10.10.1.20\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 18 96\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A trunk offering G.729 only.
pub const G729_ONLY: &str = "v=0\r\n\
o=- 77 77 IN IP4 10.10.1.5\r\n\
s=-\r\n\
c=IN IP4 10.10.1.20\r\n\
t=0 0\r\n\
m=audio 30002 RTP/AVP 18 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

/// Linphone with audio and video; telephone-event/8000 sits at 100 behind 48k/16k variants.
pub const LINPHONE_VIDEO: &str = "v=0\r\n\
o=alice 3423 2361 IN IP4 192.168.0.42\r\n\
s=Talk\r\n\
c=IN IP4 192.168.0.42\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n\
m=video 9078 RTP/AVP 96 97\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 H264/90000\r\n\
a=fmtp:97 profile-level-id=42801F\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm fir\r\n\
a=rtcp-fb:* nack\r\n";

/// A Linphone re-INVITE putting the call on hold with `a=sendonly`.
pub const LINPHONE_HOLD: &str = "v=0\r\n\
o=alice 3423 2362 IN IP4 192.168.0.42\r\n\
s=Talk\r\n\
c=IN IP4 192.168.0.42\r\n\
t=0 0\r\n\
m=audio 7078 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendonly\r\n";

/// An old PBX putting the call on hold RFC 2543 style with `c=IN IP4 0.0.0.0`.
pub const OLD_STYLE_HOLD: &str = "v=0\r\n\
o=PBX 2890844526 2890844527 IN IP4 172.16.0.9\r\n\
s=Session SDP\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

/// A softphone mapping PCMU to a dynamic payload type, lower-case encoding name.
pub const DYNAMIC_PCMU: &str = "v=0\r\n\
o=- 5 5 IN IP4 10.1.1.1\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 110 111\r\n\
c=IN IP4 10.1.1.1\r\n\
a=rtpmap:110 pcmu/8000\r\n\
a=rtpmap:111 Telephone-Event/8000\r\n\
a=fmtp:111 0-15\r\n";

/// Every fixture, for the loops over all of them.
pub const ALL: [&str; 9] = [
    SIPP_PCMU,
    BARE_0_8_101,
    BARESIP,
    CARRIER_TRUNK,
    G729_ONLY,
    LINPHONE_VIDEO,
    LINPHONE_HOLD,
    OLD_STYLE_HOLD,
    DYNAMIC_PCMU,
];
