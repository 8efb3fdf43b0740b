//! The I/O shell: sockets, the clock, threads and signals around the sans-IO switch.
//!
//! One tokio task (the signalling loop) owns the switch and the UDP socket; TCP connections
//! are tasks of their own; RTP lives on the media plane's worker threads.

pub mod reload;
pub mod retention;
pub mod tcp;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::call::{Switch, SwitchConfig, SwitchOutput};
use crate::config::RecordsConfig;
use crate::config::{CodecName, Config, InbandDtmf};
use crate::desk::DeskHandle;
use crate::dialplan::clock::WallClock;
use crate::dialplan::Diagnostic;
use crate::media::plane::{InbandDtmf as PlaneInband, MediaPlane, MediaPlaneConfig};
use crate::sdp;
use crate::sip::endpoint::{Endpoint, EndpointConfig, Transmit};
use crate::sip::fields::Transport;
use crate::sip::peer::Peer;
use crate::sip::transaction::TimerConfig;
use crate::sip::uri::Uri;
use crate::tickets::export::{self, ExportError, Exporter, ExporterConfig};
use crate::tickets::store::{Store, StoreError};
use crate::tickets::writer::{Durable, Writer, WriterConfig};
use tcp::TcpInbound;

/// How often old recordings are looked for.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often sparse tables shrink and free memory goes back to the OS after a load peak.
const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The dialplans (or their prompts) have errors.
    #[error("the dialplans have errors:\n{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Dialplan(Vec<Diagnostic>),
    /// A socket could not be bound.
    #[error("cannot bind {what} {addr}: {source}")]
    Bind {
        /// UDP, TCP.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The media plane's threads could not start.
    #[error("cannot start the media plane: {0}")]
    Media(std::io::Error),
    /// The ticket store could not be opened.
    #[error("ticket store: {0}")]
    Records(#[from] StoreError),
    /// The exporter could not start.
    #[error("record export: {0}")]
    Export(#[from] ExportError),
}

/// Runs the engine until `stop` resolves, then ends calls in progress and returns.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> Result<(), StartError> {
    let loaded = reload::load_all(&config).map_err(StartError::Dialplan)?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let plan = loaded.plan;
    let listen = config.sip.listen;
    let advertised = config.sip.advertised_ip();
    let udp = match config.sip.udp {
        true => Some(Arc::new(bind_udp(listen).map_err(|source| {
            StartError::Bind {
                what: "UDP",
                addr: listen,
                source,
            }
        })?)),
        false => None,
    };
    let (tcp_tx, mut tcp_rx) = mpsc::channel::<TcpInbound>(1024);
    if config.sip.tcp {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                what: "TCP",
                addr: listen,
                source,
            })?;
        tokio::spawn(tcp::accept(listener, tcp_tx, config.sip.max_message_bytes));
    } else {
        drop(tcp_tx);
    }
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let plane = MediaPlane::start(
        MediaPlaneConfig {
            rtp_ip: config.media.rtp_address.unwrap_or(listen.ip()),
            port_min: config.media.rtp_port_min,
            port_max: config.media.rtp_port_max,
            workers: config.media.worker_threads(),
            media_timeout: config.media.media_timeout(),
            inband_dtmf: match config.media.inband_dtmf {
                InbandDtmf::Auto => PlaneInband::Auto,
                InbandDtmf::On => PlaneInband::On,
                InbandDtmf::Off => PlaneInband::Off,
            },
            realtime_priority: config.media.realtime_priority,
        },
        media_tx,
    )
    .map_err(StartError::Media)?;

    let endpoint = Endpoint::new(
        EndpointConfig {
            via_host: advertised.to_string(),
            via_port: listen.port(),
            timers: TimerConfig {
                t1: config.sip.t1(),
                t2: config.sip.t2(),
                t4: config.sip.t4(),
            },
            server_name: config.sip.user_agent.clone(),
        },
        rand::random(),
    );
    let mut switch = Switch::new(
        SwitchConfig {
            ring: config.answer.ring(),
            max_calls: config.sip.max_calls,
            media_ip: config.media.rtp_address.unwrap_or(advertised),
            contact: Uri::sip(
                Some("hotline"),
                &advertised.to_string(),
                Some(listen.port()),
            ),
            codecs: config
                .media
                .codecs
                .iter()
                .map(|c| match c {
                    CodecName::Pcma => sdp::Codec::Pcma,
                    CodecName::Pcmu => sdp::Codec::Pcmu,
                })
                .collect(),
            redact_numbers: config.log.redact_numbers,
            recordings: config
                .records
                .recordings
                .then(|| RecordsConfig::recordings_dir(&config.paths.data)),
            seats: config.seats.clone(),
        },
        endpoint,
        Arc::clone(&plan),
        WallClock::now(),
    );
    let seats = loaded.seats.len();
    switch.set_seats(Instant::now(), loaded.seats);
    let (desk, mut desk_rx) = DeskHandle::channel(256, 1024);
    info!(
        %listen,
        udp = config.sip.udp,
        tcp = config.sip.tcp,
        rtp = ?config.media.rtp_ports(),
        numbers = plan.dialplan.numbers.len(),
        seats,
        "hotline is answering"
    );
    let (writer, exporter, mut durable_rx) = start_records(&config)?;
    let api_stop = start_api(&config, plan.dialplan.utc_offset_s, desk.clone()).await?;
    let mut reloads = reload::listen(&config.paths.data);
    let (loaded_tx, mut loaded_rx) = mpsc::channel(4);

    let mut connections: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; config.sip.max_message_bytes.max(1500) + 1];
    let mut draining_until: Option<Instant> = None;
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    // The first sweep runs at the first housekeeping pass.
    let mut last_sweep = Instant::now() - RETENTION_SWEEP;
    tokio::pin!(stop);
    loop {
        let wake = switch.poll_timeout();
        tokio::select! {
            received = recv(udp.as_deref(), &mut buf) => {
                if let Some((n, from)) = received {
                    if n < buf.len() {
                        switch.handle_message(Instant::now(), Peer::udp(from), &buf[..n]);
                    }
                }
            }
            Some(inbound) = tcp_rx.recv() => match inbound {
                TcpInbound::Opened { connection, writer } => {
                    connections.insert(connection, writer);
                }
                TcpInbound::Closed { connection } => {
                    connections.remove(&connection);
                }
                TcpInbound::Message { connection, peer, bytes } => {
                    let source = Peer { addr: peer, transport: Transport::Tcp, connection: Some(connection) };
                    switch.handle_message(Instant::now(), source, &bytes);
                }
            },
            Some(event) = media_rx.recv() => switch.handle_media_event(Instant::now(), event),
            Some(Durable::Record { id, finished }) = durable_rx.recv() => {
                if finished {
                    switch.record_durable(&id);
                    if let Some(exporter) = &exporter {
                        exporter.nudge();
                    }
                }
            }
            _ = sleep_until(wake) => switch.handle_timeout(Instant::now()),
            Some(request) = desk_rx.recv() => {
                let reply = switch.handle_desk(
                    Instant::now(),
                    &request.credential,
                    request.seat.as_deref(),
                    request.command,
                );
                // The asker may have given up: nothing to do then.
                let _ = request.reply.send(reply);
            }
            Some(request) = reloads.recv() => {
                // Reading and checking the files happens off the signalling loop.
                let config = config.clone();
                let loaded_tx = loaded_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let outcome = reload::load_all(&config);
                    let _ = loaded_tx.blocking_send((outcome, request));
                });
            }
            Some((outcome, request)) = loaded_rx.recv() => {
                reload::log_outcome(&outcome);
                if let Ok(loaded) = &outcome {
                    switch.set_plan(Instant::now(), Arc::clone(&loaded.plan));
                    switch.set_seats(Instant::now(), Arc::clone(&loaded.seats));
                }
                if let Some(reply) = request.reply {
                    let _ = reply.send(reload::report(&outcome));
                }
            }
            _ = housekeeping.tick() => {
                switch.shrink();
                if switch.active_calls() == 0 {
                    // While calls go on the thread's cache refills at once: emptied when idle.
                    crate::memory::release_thread_cache();
                }
                crate::memory::release_to_os();
                if last_sweep.elapsed() >= RETENTION_SWEEP {
                    last_sweep = Instant::now();
                    let dir = RecordsConfig::recordings_dir(&config.paths.data);
                    let keep = config.records.retention();
                    tokio::task::spawn_blocking(move || {
                        retention::sweep(&dir, keep, std::time::SystemTime::now())
                    });
                }
            }
            _ = &mut stop, if draining_until.is_none() => {
                info!(calls = switch.active_calls(), "shutting down: ending calls in progress");
                switch.shutdown(Instant::now());
                draining_until = Some(Instant::now() + config.shutdown.grace());
            }
        }
        while let Some(output) = switch.poll_output() {
            match output {
                SwitchOutput::Transmit(transmit) => {
                    send(udp.as_deref(), &connections, transmit).await
                }
                SwitchOutput::Media(command) => {
                    if let Err(error) = plane.command(command) {
                        warn!(%error, "media plane refused a command");
                    }
                }
                SwitchOutput::Desk(event) => desk.publish(event),
                SwitchOutput::Record(record) => {
                    if let Err(gone) = writer.submit(*record) {
                        // Never silent: the record goes to the log whole.
                        let json = serde_json::to_string(&gone.record).unwrap_or_default();
                        tracing::error!(record = %json, "record writer gone: record only in this log");
                    }
                }
            }
        }
        if let Some(until) = draining_until {
            let settled = switch.active_calls() == 0 && switch.unsaved_records() == 0;
            if settled || Instant::now() >= until {
                if switch.active_calls() > 0 {
                    warn!(
                        calls = switch.active_calls(),
                        "grace period over: exiting with calls up"
                    );
                }
                break;
            }
        }
    }
    if let Some(stop) = api_stop {
        let _ = stop.send(());
    }
    // Everything queued reaches the disk before the process exits.
    writer.close();
    if let Some(exporter) = exporter {
        exporter.stop();
    }
    plane.shutdown();
    // `hotline reload` must not find a socket nobody answers.
    let _ = std::fs::remove_file(config.paths.data.join(reload::CONTROL_SOCKET));
    info!("stopped");
    Ok(())
}

/// Starts the HTTP API when `[api] admin_token` is set; returns what stops it.
async fn start_api(
    config: &Config,
    utc_offset_s: i32,
    desk: DeskHandle,
) -> Result<Option<tokio::sync::oneshot::Sender<()>>, StartError> {
    if config.api.admin_token.is_empty() {
        info!("HTTP API off: set [api] admin_token to turn it on");
        return Ok(None);
    }
    let listen = config.api.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "HTTP API",
            addr: listen,
            source,
        })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = crate::api::ApiConfig {
        listen,
        admin_token: config.api.admin_token.clone(),
        store: RecordsConfig::store_path(&config.paths.data),
        utc_offset_s,
        desk: Some(desk),
    };
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        if let Err(error) = crate::api::serve_on(listener, api, stopped).await {
            warn!(%error, "HTTP API stopped");
        }
    });
    info!(%listen, "HTTP API listening");
    Ok(Some(stop))
}

/// Opens the ticket store (reporting calls a previous run left unfinished), and starts its
/// writer and, when webhooks are configured, the exporter.
#[allow(clippy::type_complexity)]
fn start_records(
    config: &Config,
) -> Result<(Writer, Option<Exporter>, mpsc::UnboundedReceiver<Durable>), StartError> {
    let path = RecordsConfig::store_path(&config.paths.data);
    let unfinished = Store::open(&path)?.unfinished()?;
    if !unfinished.is_empty() {
        warn!(
            calls = unfinished.len(),
            store = %path.display(),
            "calls were in progress when the engine last stopped: their records stay unfinished"
        );
    }
    let endpoints = &config.records.export;
    let (durable_tx, durable_rx) = mpsc::unbounded_channel();
    let writer = Writer::start(
        WriterConfig {
            path: path.clone(),
            capacity: config.records.queue_capacity,
            endpoints: endpoints.iter().map(|e| e.name.clone()).collect(),
        },
        durable_tx,
    )?;
    let exporter = match endpoints.is_empty() {
        true => None,
        false => Some(Exporter::start(ExporterConfig {
            path,
            endpoints: endpoints
                .iter()
                .map(|e| export::Endpoint {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    timeout: std::time::Duration::from_secs(e.timeout_s),
                })
                .collect(),
            backoff_min: std::time::Duration::from_secs(1),
            backoff_max: std::time::Duration::from_secs(300),
            poll: std::time::Duration::from_secs(1),
        })?),
    };
    Ok((writer, exporter, durable_rx))
}

/// Kernel buffer for the SIP UDP socket: the default (~208 KB) overflows in call bursts of
/// about a thousand calls per second, and every drop costs the caller a 500 ms retransmission.
const SIP_UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Binds the SIP UDP socket with a receive buffer sized for call bursts.
fn bind_udp(listen: std::net::SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // The kernel caps this at net.core.rmem_max; a smaller buffer is still better than none.
    if let Err(error) = socket.set_recv_buffer_size(SIP_UDP_BUFFER) {
        warn!(%error, "cannot enlarge the SIP UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&listen.into())?;
    UdpSocket::from_std(socket.into())
}

async fn recv(udp: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, std::net::SocketAddr)> {
    match udp {
        Some(socket) => socket.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

async fn send(
    udp: Option<&UdpSocket>,
    connections: &HashMap<u64, mpsc::Sender<Vec<u8>>>,
    transmit: Transmit,
) {
    match (transmit.to.transport, transmit.to.connection) {
        (Transport::Udp, _) => {
            if let Some(socket) = udp {
                if let Err(error) = socket.send_to(&transmit.bytes, transmit.to.addr).await {
                    warn!(%error, to = %transmit.to.addr, "UDP send failed");
                }
            }
        }
        (_, Some(connection)) => match connections.get(&connection) {
            Some(writer) => {
                if writer.try_send(transmit.bytes).is_err() {
                    warn!(connection, "TCP connection stuck or gone: message dropped");
                }
            }
            None => warn!(connection, "TCP connection gone: message dropped"),
        },
        (transport, None) => {
            warn!(?transport, to = %transmit.to.addr, "no outbound connection support yet")
        }
    }
}
