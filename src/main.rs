//! The `hotline` command: run the engine, check and simulate dialplans, reload them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::Config;
use hotline::dialplan::{load, simulate, Plan, Severity};
use hotline::tickets::figures::{self, FiguresBy};
use hotline::tickets::query::{self, Format, RecordFilter};
use hotline::tickets::store::{self, Store, StoreError};
use tracing_subscriber::EnvFilter;

/// Telephony switching and IVR engine for a city's unified 12345 hotline.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine (built-in defaults when no configuration file is given).
    Run {
        /// The configuration file (TOML); see hotline.example.toml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a dialplan directory; prints every error and warning (exit status 1 on errors).
    Check {
        /// The dialplan directory.
        #[arg(default_value = "dialplans")]
        dir: PathBuf,
        /// The prompt directory.
        #[arg(long, default_value = "prompts")]
        prompts: PathBuf,
    },
    /// Walk a dialplan as a caller would, without any network, and print each step.
    Simulate {
        /// The number dialled.
        #[arg(long)]
        to: String,
        /// One item per wait for input: digits typed together, or - to stay silent (e.g. 2,1).
        #[arg(long, default_value = "")]
        keys: String,
        /// Local time of the call, "YYYY-MM-DD HH:MM" (default: now).
        #[arg(long)]
        at: Option<String>,
        /// The caller's number.
        #[arg(long, default_value = "")]
        from: String,
        /// The dialplan directory.
        #[arg(long, default_value = "dialplans")]
        dialplans: PathBuf,
        /// The prompt directory.
        #[arg(long, default_value = "prompts")]
        prompts: PathBuf,
    },
    /// Make the running engine load its dialplans again; prints the outcome.
    Reload {
        /// The engine's configuration file (to find its control socket in the data directory).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List call records from the ticket store, newest first, or the assessment figures.
    Records(RecordsArgs),
}

/// Options of `hotline records`.
#[derive(clap::Args)]
struct RecordsArgs {
    /// The engine's configuration file (the store is `<paths.data>/records.sqlite`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Calls that arrived at or after this local time: "YYYY-MM-DD" or "YYYY-MM-DD HH:MM".
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Calls that arrived before this local time; a date alone includes that whole day.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only calls from or to this number (the caller's number or the number dialled, exact).
    #[arg(long, value_name = "N", conflicts_with = "figures")]
    number: Option<String>,
    /// Only calls of this hotline (the dialplan's `line`).
    #[arg(long, value_name = "NAME")]
    hotline: Option<String>,
    /// Most records shown (the newest); 0 shows all.
    #[arg(long, default_value_t = 100, conflicts_with = "figures")]
    limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print the assessment figures per local day and hotline (or `--by`) instead of records.
    #[arg(long)]
    figures: bool,
    /// Group the figures per local day and hotline (the default), seat or queue.
    #[arg(long, value_enum, value_name = "GROUP", requires = "figures")]
    by: Option<FiguresBy>,
    /// UTC offset of the local times read and shown (and of the figures' days).
    #[arg(long, value_name = "OFFSET", default_value = "+08:00", allow_hyphen_values = true,
          value_parser = query::parse_utc_offset)]
    utc_offset: i32,
}

fn main() -> ExitCode {
    hotline::memory::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(config),
        Command::Check { dir, prompts } => check(&dir, &prompts),
        Command::Simulate {
            to,
            keys,
            at,
            from,
            dialplans,
            prompts,
        } => simulate(&dialplans, &prompts, to, &keys, at.as_deref(), from),
        Command::Reload { config } => reload(config),
        Command::Records(args) => records(&args),
    }
}

/// `hotline records`: query the store read-only and print records or figures.
fn records(args: &RecordsArgs) -> ExitCode {
    match records_output(args) {
        Ok(output) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("hotline records: {error}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The text `hotline records` prints, or the error message.
fn records_output(args: &RecordsArgs) -> Result<String, String> {
    let config = Config::load_or_default(args.config.as_deref()).map_err(|e| e.to_string())?;
    let time = |flag: &str, text: Option<&str>, end_of_day: bool| {
        text.map(|text| query::parse_local_time(text, args.utc_offset, end_of_day))
            .transpose()
            .map_err(|error| format!("{flag}: {error}"))
    };
    let since = time("--since", args.since.as_deref(), false)?;
    let until = time("--until", args.until.as_deref(), true)?;
    let path = store::path_in(&config.paths.data);
    let store = Store::open_read_only(&path).map_err(|e| format!("hotline records: {e}"))?;
    let failed = |e: StoreError| format!("hotline records: {e}");
    let rendered = if args.figures {
        let by = args.by.unwrap_or_default();
        let figures = store
            .figures_by(by, since, until, args.hotline.as_deref(), args.utc_offset)
            .map_err(failed)?;
        figures::render_figure_table(&figures, args.format)
    } else {
        let filter = RecordFilter {
            since,
            until,
            number: args.number.clone(),
            hotline: args.hotline.clone(),
            limit: args.limit,
        };
        let records = store.records(&filter).map_err(failed)?;
        query::render_records(&records, args.format, args.utc_offset)
    };
    rendered.map_err(|e| format!("hotline records: {e}"))
}

fn check(dir: &std::path::Path, prompts: &std::path::Path) -> ExitCode {
    match load::load_dir(dir, prompts) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                println!("{warning}");
            }
            println!(
                "{}: ok: {} numbers, {} nodes, {} warnings",
                dir.display(),
                loaded.dialplan.numbers.len(),
                loaded.dialplan.nodes.len(),
                loaded.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            let errors = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            println!("{}: {errors} errors", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn simulate(
    dialplans: &std::path::Path,
    prompts: &std::path::Path,
    to: String,
    keys: &str,
    at: Option<&str>,
    from: String,
) -> ExitCode {
    let keys = match simulate::parse_keys(keys) {
        Ok(keys) => keys,
        Err(error) => {
            eprintln!("--keys: {error}");
            return ExitCode::FAILURE;
        }
    };
    let at = match at.map(|at| chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M")) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(error)) => {
            eprintln!("--at: {error}; expected \"YYYY-MM-DD HH:MM\"");
            return ExitCode::FAILURE;
        }
    };
    let loaded = match load::load_dir(dialplans, prompts) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    let offset = chrono::Duration::seconds(i64::from(loaded.dialplan.utc_offset_s));
    let now = chrono::Utc::now().naive_utc() + offset;
    let plan = std::sync::Arc::new(Plan {
        dialplan: loaded.dialplan,
        prompts: loaded.prompts,
    });
    let caller = simulate::Caller { to, from, at, keys };
    for line in simulate::simulate(&plan, &caller, now) {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

fn reload(config: Option<PathBuf>) -> ExitCode {
    let config = match Config::load_or_default(config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    match hotline::server::reload::request_reload(&config.paths.data) {
        Ok(answer) => {
            print!("{answer}");
            match answer.starts_with("ok") {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Err(error) => {
            eprintln!("hotline reload: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Option<PathBuf>) -> ExitCode {
    let config = match Config::load_or_default(config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hotline::server::run(config, stop_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hotline: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
