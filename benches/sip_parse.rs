//! Parsing and printing a carrier trunk's INVITE with SDP (about 950 bytes).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hotline::sip::parse::parse;

/// An initial INVITE as a carrier's SBC sends it to the hotline: two Vias, Record-Route,
/// P-Asserted-Identity, session timers and a G.711 + telephone-event offer.
const INVITE: &str = "INVITE sip:12345@10.20.30.40:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.20.1.5:5060;branch=z9hG4bK-524287-1---9c1f2a3b4c5d6e7f;rport\r\n\
Via: SIP/2.0/UDP 10.20.1.9:5060;branch=z9hG4bKsbc0a1b2c3d4;received=10.20.1.9\r\n\
Record-Route: <sip:10.20.1.5:5060;lr;ftag=as6c3f2e1d>\r\n\
Max-Forwards: 68\r\n\
From: \"13800138000\" <sip:13800138000@10.20.1.5;user=phone>;tag=as6c3f2e1d\r\n\
To: <sip:12345@10.20.30.40;user=phone>\r\n\
Call-ID: 3c2f7a1e5b9d4c8f@10.20.1.5\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:13800138000@10.20.1.5:5060;transport=udp>\r\n\
P-Asserted-Identity: <sip:+8613800138000@10.20.1.5;user=phone>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO\r\n\
Supported: timer, 100rel, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 241\r\n\
\r\n\
v=0\r\n\
o=SBC 1682390012 1682390012 IN IP4 10.20.1.5\r\n\
s=SBC Call\r\n\
c=IN IP4 10.20.1.6\r\n\
t=0 0\r\n\
m=audio 31000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn bench(c: &mut Criterion) {
    let bytes = INVITE.as_bytes();
    let message = match parse(bytes) {
        Ok(message) => message,
        Err(error) => panic!("benchmark INVITE does not parse: {error}"),
    };
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse_invite", |b| b.iter(|| parse(black_box(bytes))));
    group.bench_function("print_invite", |b| {
        let mut buf = Vec::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            black_box(&message).write_to(&mut buf);
            black_box(buf.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
