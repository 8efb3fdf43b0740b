//! The RTP port pool: each worker owns a disjoint share of the configured range.
//!
//! A leg takes an even port `p` for RTP; `p + 1` is reserved for RTCP (left unbound: the engine
//! does not use RTCP) and never handed out. Worker `i` of `n` owns the even ports with
//! `(p / 2) % n == i`, so workers never share or lock anything to open a leg. Free ports sit in a
//! FIFO queue: a port closed just now goes to the back, which keeps stray packets from the
//! previous call off a new one for as long as the pool allows.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::UdpSocket;

/// Free RTP ports of one worker.
#[derive(Debug)]
pub struct PortPool {
    /// Free even ports, oldest-freed first.
    free: VecDeque<u16>,
}

impl PortPool {
    /// The share of `port_min..=port_max` owned by worker `index` of `workers`.
    ///
    /// A port is included when it is even, at least `port_min`, and its RTCP companion `p + 1`
    /// is at most `port_max`.
    pub fn for_worker(port_min: u16, port_max: u16, index: usize, workers: usize) -> PortPool {
        let workers = workers.max(1);
        let first = u32::from(port_min) + u32::from(port_min) % 2;
        let free = (first..u32::from(port_max))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .filter(|p| usize::from(p / 2) % workers == index)
            .collect();
        PortPool { free }
    }

    /// Number of free ports.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Binds a non-blocking UDP socket on the oldest free port of the pool at `ip`.
    ///
    /// A port that fails to bind (held by another process) goes to the back of the queue and
    /// the next one is tried; returns the last bind error when every free port failed, or
    /// [`io::ErrorKind::AddrNotAvailable`] when the pool is empty.
    pub fn bind(&mut self, ip: IpAddr) -> io::Result<(UdpSocket, u16)> {
        let mut last_err = io::Error::new(io::ErrorKind::AddrNotAvailable, "RTP port pool empty");
        for _ in 0..self.free.len() {
            let Some(port) = self.free.pop_front() else {
                break;
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(socket) => return Ok((socket, port)),
                Err(e) => {
                    self.free.push_back(port);
                    last_err = e;
                }
            }
        }
        Err(last_err)
    }

    /// Returns a port to the back of the queue.
    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_disjoint_and_complete() {
        let all: Vec<u16> = (0..3)
            .flat_map(|i| PortPool::for_worker(20001, 20020, i, 3).free)
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            vec![20002, 20004, 20006, 20008, 20010, 20012, 20014, 20016, 20018]
        );
    }

    #[test]
    fn top_of_range_needs_room_for_rtcp() {
        let pool = PortPool::for_worker(65530, 65535, 0, 1);
        assert_eq!(
            pool.free.iter().copied().collect::<Vec<_>>(),
            vec![65530, 65532, 65534]
        );
        let pool = PortPool::for_worker(65530, 65534, 0, 1);
        assert_eq!(pool.free(), 2);
    }

    #[test]
    fn fifo_reuse() {
        let mut pool = PortPool::for_worker(30000, 30005, 0, 1);
        let a = pool.free.pop_front();
        assert_eq!(a, Some(30000));
        pool.release(30000);
        assert_eq!(pool.free.pop_front(), Some(30002));
    }
}
