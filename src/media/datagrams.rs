//! Reading an RTP socket's waiting datagrams a few per system call.
//!
//! A leg's socket is registered edge-triggered, so it must be read until it is empty. With
//! `recv_from` that takes a second call, which fails with `WouldBlock`, for every packet: an
//! RTP socket rarely holds more than one. On Linux `recvmmsg` returns the packet and, by
//! returning fewer than it was asked for, shows the socket empty: one call instead of two.

use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

/// Receive buffer size: larger than any RTP packet a G.711 peer sends.
pub const DATAGRAM_LEN: usize = 2048;

/// Datagrams asked for per call.
pub const BATCH: usize = 4;

/// What one read returned: how many datagrams, and whether the socket is now known empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Datagrams held, readable with [`Datagrams::get`].
    pub count: usize,
    /// The socket had no more datagrams (no further read is needed until it is readable again).
    pub drained: bool,
}

/// Buffers for one batch of datagrams, owned by a media worker and lent to each leg in turn.
pub struct Datagrams {
    bufs: Box<[[u8; DATAGRAM_LEN]; BATCH]>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl Default for Datagrams {
    fn default() -> Self {
        Self {
            bufs: Box::new([[0; DATAGRAM_LEN]; BATCH]),
            lens: [0; BATCH],
            from: [None; BATCH],
            count: 0,
        }
    }
}

impl Datagrams {
    /// Datagram `i` of the last read and where it came from (`None` past the count, or for a
    /// source address that is neither IPv4 nor IPv6).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let from = (*self.from.get(i)?)?;
        let data = self.bufs.get(i)?.get(..*self.lens.get(i)?)?;
        Some((data, from))
    }

    /// Reads what `socket` holds, up to [`BATCH`] datagrams, without blocking. An empty socket
    /// is `Err(WouldBlock)`.
    #[cfg(target_os = "linux")]
    pub fn read(&mut self, socket: &UdpSocket) -> io::Result<Read> {
        use std::os::fd::AsRawFd;
        // SAFETY: all-zero bytes are a valid value for these plain C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            iovs[i].iov_base = buf.as_mut_ptr().cast();
            iovs[i].iov_len = DATAGRAM_LEN;
            msgs[i].msg_hdr.msg_name = std::ptr::addr_of_mut!(names[i]).cast();
            msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            msgs[i].msg_hdr.msg_iov = std::ptr::addr_of_mut!(iovs[i]);
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points into `names`, `iovs` and `self.bufs`, which outlive the
        // call; the kernel writes at most the lengths given; the fd is the socket's own.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        self.count = 0;
        let count = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        self.count = count.min(BATCH);
        for i in 0..self.count {
            self.lens[i] = (msgs[i].msg_len as usize).min(DATAGRAM_LEN);
            self.from[i] = socket_addr(&names[i]);
        }
        Ok(Read {
            count: self.count,
            drained: count < BATCH,
        })
    }

    /// Reads one datagram from `socket` without blocking (elsewhere than Linux).
    #[cfg(not(target_os = "linux"))]
    pub fn read(&mut self, socket: &UdpSocket) -> io::Result<Read> {
        self.count = 0;
        let (len, from) = socket.recv_from(&mut self.bufs[0])?;
        self.lens[0] = len;
        self.from[0] = Some(from);
        self.count = 1;
        Ok(Read {
            count: 1,
            drained: false,
        })
    }
}

/// The address the kernel wrote for a received datagram.
#[cfg(target_os = "linux")]
fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and aligned for.
            let v4 = unsafe { &*std::ptr::addr_of!(*name).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*std::ptr::addr_of!(*name).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            let port = u16::from_be(v6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pair() -> (UdpSocket, std::net::UdpSocket) {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        phone.connect(socket.local_addr().unwrap()).unwrap();
        (socket, phone)
    }

    /// Blocks until `socket` has a datagram (at most 5 s).
    fn readable(socket: &UdpSocket) {
        let mut fd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, 5000) };
        assert_eq!(n, 1, "nothing arrived");
    }

    #[test]
    fn an_empty_socket_would_block() {
        let (socket, _phone) = pair();
        let mut batch = Datagrams::default();
        let err = batch.read(&socket).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn waiting_datagrams_come_in_order_with_their_source() {
        let (socket, phone) = pair();
        let mut batch = Datagrams::default();
        let sent: Vec<Vec<u8>> = (0..BATCH + 2).map(|i| vec![i as u8; i % 3 + 1]).collect();
        for datagram in &sent {
            phone.send(datagram).unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < sent.len() {
            readable(&socket);
            let read = batch.read(&socket).unwrap();
            for i in 0..read.count {
                let (data, from) = batch.get(i).unwrap();
                assert_eq!(from, phone.local_addr().unwrap());
                seen.push(data.to_vec());
            }
            assert!(batch.get(read.count).is_none());
        }
        assert_eq!(seen, sent);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn one_waiting_datagram_is_read_with_the_socket_known_empty() {
        let (socket, phone) = pair();
        let mut batch = Datagrams::default();
        phone.send(b"rtp").unwrap();
        readable(&socket);
        let read = batch.read(&socket).unwrap();
        assert_eq!(
            read,
            Read {
                count: 1,
                drained: true
            }
        );
        assert_eq!(batch.get(0).unwrap().0, b"rtp");
    }
}
