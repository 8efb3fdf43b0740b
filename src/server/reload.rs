//! Loading the dialplans and the seats file, and reloading them on SIGHUP or `hotline reload` (a line on the
//! control socket `<data>/control.sock`) without touching calls in progress.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::config::Config;
use crate::dialplan::{load, Diagnostic, Plan};
use crate::seats::{self, SeatBook};

/// The control socket's file name in the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// A request to load the dialplans again; the outcome goes to `reply` when someone asks.
#[derive(Debug)]
pub struct ReloadRequest {
    /// Where to send the outcome (`hotline reload`); `None` for SIGHUP.
    pub reply: Option<oneshot::Sender<String>>,
}

/// Loads the dialplans and their prompts as configured; warnings are returned with the plan.
pub fn load_plan(config: &Config) -> Result<(Plan, Vec<Diagnostic>), Vec<Diagnostic>> {
    let loaded = load::load_dir(&config.paths.dialplans, &config.paths.prompts)?;
    let plan = Plan {
        dialplan: loaded.dialplan,
        prompts: loaded.prompts,
    };
    Ok((plan, loaded.warnings))
}

/// The dialplans and the seats, loaded and checked together.
#[derive(Debug)]
pub struct Loaded {
    /// The dialplan version.
    pub plan: Arc<Plan>,
    /// The seats.
    pub seats: Arc<SeatBook>,
    /// Warnings of both.
    pub warnings: Vec<Diagnostic>,
}

/// A load: everything, or the errors of everything (then nothing changes).
pub type Outcome = Result<Loaded, Vec<Diagnostic>>;

/// Loads the dialplans and the seats file; either one broken refuses both.
pub fn load_all(config: &Config) -> Outcome {
    let plan = load_plan(config);
    let seats = seats::load(&config.seats.file);
    match (plan, seats) {
        (Ok((plan, mut warnings)), Ok((seats, more))) => {
            warnings.extend(more);
            Ok(Loaded {
                plan: Arc::new(plan),
                seats: Arc::new(seats),
                warnings,
            })
        }
        (plan, seats) => {
            let mut errors = plan.err().unwrap_or_default();
            errors.extend(seats.err().unwrap_or_default());
            Err(errors)
        }
    }
}

/// The outcome of a load as the admin reads it: `ok` or `refused`, then one problem per line.
pub fn report(outcome: &Outcome) -> String {
    let (head, problems) = match outcome {
        Ok(loaded) => (
            format!(
                "ok: {} numbers, {} nodes, {} seats loaded",
                loaded.plan.dialplan.numbers.len(),
                loaded.plan.dialplan.nodes.len(),
                loaded.seats.len()
            ),
            &loaded.warnings,
        ),
        Err(errors) => (
            "refused: the running dialplans keep serving".to_string(),
            errors,
        ),
    };
    let mut out = head;
    for problem in problems {
        out.push('\n');
        out.push_str(&problem.to_string());
    }
    out.push('\n');
    out
}

/// Starts listening for reload requests: SIGHUP and the control socket.
pub fn listen(data_dir: &Path) -> mpsc::Receiver<ReloadRequest> {
    let (tx, rx) = mpsc::channel(8);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hangup) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        if tx.send(ReloadRequest { reply: None }).await.is_err() {
                            break;
                        }
                    }
                });
            }
            Err(error) => warn!(%error, "cannot catch SIGHUP: reload with `hotline reload`"),
        }
    }
    match bind_control(data_dir) {
        Ok(listener) => {
            tokio::spawn(serve_control(listener, tx));
        }
        Err(error) => warn!(%error, dir = %data_dir.display(), "no control socket"),
    }
    rx
}

fn bind_control(data_dir: &Path) -> std::io::Result<UnixListener> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(CONTROL_SOCKET);
    // A socket left by an engine that did not exit cleanly would block the bind.
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    UnixListener::bind(path)
}

async fn serve_control(listener: UnixListener, tx: mpsc::Sender<ReloadRequest>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Err(error) = control_session(stream, tx).await {
                warn!(%error, "control connection failed");
            }
        });
    }
}

/// One command per connection: `reload`.
async fn control_session(
    stream: UnixStream,
    tx: mpsc::Sender<ReloadRequest>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let answer = match line.trim() {
        "reload" => {
            let (reply, outcome) = oneshot::channel();
            let sent = tx.send(ReloadRequest { reply: Some(reply) }).await;
            match sent {
                Ok(()) => outcome
                    .await
                    .unwrap_or_else(|_| "refused: the engine is stopping\n".to_string()),
                Err(_) => "refused: the engine is stopping\n".to_string(),
            }
        }
        other => format!("unknown command `{other}`; expected: reload\n"),
    };
    write.write_all(answer.as_bytes()).await?;
    write.shutdown().await
}

/// Asks the engine whose data directory is `data_dir` to reload; returns its answer.
pub fn request_reload(data_dir: &Path) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let path: PathBuf = data_dir.join(CONTROL_SOCKET);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("{}: {error} (is the engine running?)", path.display()),
        )
    })?;
    stream.write_all(b"reload\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Logs the outcome of a reload.
pub fn log_outcome(outcome: &Outcome) {
    match outcome {
        Ok(loaded) => {
            info!(
                numbers = loaded.plan.dialplan.numbers.len(),
                nodes = loaded.plan.dialplan.nodes.len(),
                seats = loaded.seats.len(),
                warnings = loaded.warnings.len(),
                "dialplans reloaded: new calls use them"
            );
            for warning in &loaded.warnings {
                warn!("{warning}");
            }
        }
        Err(errors) => {
            warn!(
                errors = errors.len(),
                "dialplan reload refused: the running version keeps serving"
            );
            for error in errors {
                warn!("{error}");
            }
        }
    }
}
