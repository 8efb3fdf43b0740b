//! SIP over TCP: one task per connection, framed by Content-Length, bounded in size.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

use crate::sip::framing::{Frame, StreamFramer};

/// Outgoing bytes queued per connection before the connection is considered stuck.
const WRITE_QUEUE: usize = 256;

/// What connection tasks tell the signalling loop.
#[derive(Debug)]
pub enum TcpInbound {
    /// A connection was accepted; write to it through `writer`.
    Opened {
        /// The connection's number.
        connection: u64,
        /// Its write queue.
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// One framed SIP message.
    Message {
        /// The connection's number.
        connection: u64,
        /// The peer's address.
        peer: SocketAddr,
        /// The message bytes.
        bytes: Vec<u8>,
    },
    /// The connection is gone.
    Closed {
        /// The connection's number.
        connection: u64,
    },
}

/// Accepts connections until the listener fails; each gets its own task.
pub async fn accept(listener: TcpListener, inbound: mpsc::Sender<TcpInbound>, max_bytes: usize) {
    let mut next = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                next += 1;
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, peer, next, inbound.clone(), max_bytes));
            }
            Err(error) => debug!(%error, "TCP accept failed"),
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    connection: u64,
    inbound: mpsc::Sender<TcpInbound>,
    max_bytes: usize,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let pong = tx.clone();
    if inbound
        .send(TcpInbound::Opened {
            connection,
            writer: tx,
        })
        .await
        .is_err()
    {
        return;
    }
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::with_limits(max_bytes, max_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.pop() {
                Ok(Some(Frame::Message(bytes))) => {
                    let message = TcpInbound::Message {
                        connection,
                        peer,
                        bytes,
                    };
                    if inbound.send(message).await.is_err() {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = pong.try_send(b"\r\n".to_vec());
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(error) => {
                    debug!(%error, %peer, "closing TCP connection");
                    break 'read;
                }
            }
        }
    }
    let _ = inbound.send(TcpInbound::Closed { connection }).await;
}
