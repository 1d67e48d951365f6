//! `disc21-eval`: the command line of the image-sim workspace.
//!
//! Exit codes: 0 success, 1 failure (the error is printed on standard error), 2 usage error
//! (unknown flag, missing argument: clap's own code). Logs go to standard error, filtered by
//! `RUST_LOG` (default `warn`); `--quiet` silences everything but the final error.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  failure (the error is printed on standard error)
  2  usage error (unknown flag, missing or invalid argument)

Environment:
  RUST_LOG        log filter, e.g. `RUST_LOG=debug` or `RUST_LOG=disc21_eval=info` (default: warn)
  HF_HOME, HF_HUB_CACHE
                  where model ids are looked up (default ~/.cache/huggingface/hub)
  HF_HUB_OFFLINE  `1`: never download weights (same as --offline)

Outputs are never overwritten unless --force is given.

Example:
  disc21-eval generate --out data --references 200 --queries 100
  disc21-eval run --data data --out report";

/// CLIP vs DINOv2 on DISC21: preprocess, embed, index, search, score and report.
#[derive(Parser, Debug)]
#[command(name = "disc21-eval", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// Print nothing but errors: no progress, no stage lines, no logs.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Never download weights; use only folders and the local Hugging Face cache (as
    /// `HF_HUB_OFFLINE=1`).
    #[arg(long, global = true)]
    offline: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write the exact float32 tensor (1×3×H×W) a model would see for an image, as .npy.
    Preprocess(commands::preprocess::Args),
    /// Embed a folder or list of images with CLIP or DINOv2 into an N×D .npy.
    #[command(after_help = "Example:\n  \
        disc21-eval embed --model dinov2 --weights facebook/dinov2-base --images data/references --out refs.npy\n\n\
        Writes refs.npy, refs.ids.txt, refs.skipped.csv (unreadable images and why) and refs.meta.json.")]
    Embed(commands::embed::Args),
    /// Build a flat (FAISS file) or HNSW index from embeddings.
    #[command(after_help = "Example:\n  \
        disc21-eval index --embeddings refs.npy --ids refs.ids.txt --kind flat --out refs.faiss")]
    Index(commands::index::Args),
    /// Search an index with query embeddings and write predictions as CSV.
    #[command(after_help = "Example:\n  \
        disc21-eval search --index refs.faiss --queries queries.npy --query-ids queries.ids.txt --k 10 --out predictions.csv")]
    Search(commands::search::Args),
    /// Score predictions against ground truth (µAP, recall@P90, accuracy, ...).
    #[command(after_help = "Example:\n  \
        disc21-eval metrics --predictions predictions.csv --ground-truth data/public_ground_truth.csv --json")]
    Metrics(commands::metrics::Args),
    /// Generate a small DISC21-shaped data set (references, transformed queries, ground truth).
    #[command(after_help = "Example:\n  \
        disc21-eval generate --out data --references 200 --queries 100 --seed 0")]
    Generate(commands::generate::Args),
    /// Run the whole benchmark on a DISC21 folder and write a report.
    #[command(after_help = "Example:\n  \
        disc21-eval run --data data --models clip,dinov2 --out report\n\n\
        Weights default to openai/clip-vit-base-patch32 and facebook/dinov2-base in the local \
        Hugging Face cache; pass --weights-clip / --weights-dinov2 for folders.")]
    Run(commands::run::Args),
    /// Measure decode, preprocess, model and end-to-end throughput.
    #[command(after_help = "Example:\n  \
        disc21-eval bench --model dinov2 --images data/references --device cpu")]
    Bench(commands::bench::Args),
    /// Join the embedding files of `embed --shard I/N` runs.
    #[command(after_help = "Example:\n  \
        disc21-eval merge shard0.npy shard1.npy --out refs.npy")]
    Merge(commands::merge::Args),
}

/// With `--quiet`, points standard error at /dev/null (progress displays and stage lines of
/// every command go there) and returns a handle on the real standard error for the final
/// error message.
#[cfg(unix)]
fn silence_stderr() -> Option<std::fs::File> {
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
    let saved: OwnedFd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .ok()?;
    // SAFETY: dup2 on two open descriptors this process owns; fd 2 is replaced atomically and
    // `saved` keeps the original terminal or pipe open.
    if unsafe { libc::dup2(null.as_raw_fd(), 2) } < 0 {
        return None;
    }
    // SAFETY: `saved` is a valid descriptor whose ownership moves into the File.
    Some(unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(saved)) })
}

#[cfg(not(unix))]
fn silence_stderr() -> Option<std::fs::File> {
    None
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    if cli.offline {
        // SAFETY: set before any other thread exists; read by the weight lookup.
        unsafe { std::env::set_var("HF_HUB_OFFLINE", "1") };
    }
    let real_stderr = if cli.quiet { silence_stderr() } else { None };
    log::debug!("{:?}", cli.command);
    let result = match cli.command {
        Command::Preprocess(args) => commands::preprocess::run(args),
        Command::Embed(args) => commands::embed::run(args),
        Command::Index(args) => commands::index::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Metrics(args) => commands::metrics::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Merge(args) => commands::merge::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            log::debug!("{err:?}");
            let message = error_message(&err);
            match real_stderr {
                Some(mut f) => {
                    let _ = std::io::Write::write_fmt(&mut f, format_args!("error: {message}\n"));
                }
                None => eprintln!("error: {message}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, like anyhow's `{:#}`, but without a cause whose
/// text the message already ends with (our error types print their source in their own
/// message, so `{:#}` would repeat it: "x: No such file (os error 2): No such file (os error 2)").
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let inner = anyhow::Error::new(io).context("x.npy: No such file");
        let err = inner.context("reading x.npy");
        assert_eq!(error_message(&err), "reading x.npy: x.npy: No such file");
        let plain = anyhow::anyhow!("root").context("outer");
        assert_eq!(error_message(&plain), "outer: root");
    }
}
