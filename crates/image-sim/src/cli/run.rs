//! What every binary does around its commands: logging, `--quiet`, `--offline`, the final error
//! line and exit code, and handing model commands to a sibling binary.

use std::process::ExitCode;

/// The options every command has.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct GlobalArgs {
    /// Print nothing but errors: no progress, no stage lines, no logs.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Never download weights; use only folders and the local Hugging Face cache (as
    /// `HF_HUB_OFFLINE=1`).
    #[arg(long, global = true)]
    pub offline: bool,
}

/// Sets up logging (`RUST_LOG`, default `warn`), `--offline` and `--quiet`, logs the parsed
/// `args` at debug level under the log target `program`, runs `command`, and turns its error
/// into one `error: ...` line on standard error and exit code 1 (2 for a [`super::UsageError`]).
pub fn main_with(
    program: &str,
    global: GlobalArgs,
    args: &str,
    command: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .init();
    log::debug!(target: program, "{args}");
    if global.offline {
        // SAFETY: set before any other thread exists; read by the weight lookup.
        unsafe { std::env::set_var("HF_HUB_OFFLINE", "1") };
    }
    let real_stderr = if global.quiet { silence_stderr() } else { None };
    match command() {
        Ok(code) => code,
        Err(err) => {
            log::debug!("{err:?}");
            let message = error_message(&err);
            let code = if err.downcast_ref::<super::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            };
            match real_stderr {
                Some(mut f) => {
                    let _ = std::io::Write::write_fmt(&mut f, format_args!("error: {message}\n"));
                }
                None => eprintln!("error: {message}"),
            }
            code
        }
    }
}

/// Replaces this process with the executable `name` in this executable's folder, given the
/// same arguments (`argv[0]` kept, so help and errors name the command the user typed).
/// Returns only when that fails, with an error saying where the executable was looked for.
pub fn exec_sibling(name: &str) -> anyhow::Error {
    let here = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return anyhow::anyhow!("finding this executable's folder: {e}"),
    };
    let sibling = here.with_file_name(name);
    if !sibling.is_file() {
        return anyhow::anyhow!(
            "this command runs a model, which `{name}` does (it links libtorch); it was not \
             found at {} (install it beside {}: `cargo install image-sim` installs both)",
            sibling.display(),
            here.display()
        );
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| name.into());
    let mut cmd = std::process::Command::new(&sibling);
    cmd.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.arg0(argv0).exec();
        anyhow::anyhow!("starting {}: {err}", sibling.display())
    }
    #[cfg(not(unix))]
    {
        let _ = argv0;
        match cmd.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(err) => anyhow::anyhow!("starting {}: {err}", sibling.display()),
        }
    }
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

/// The error and its causes joined by `: `, like anyhow's `{:#}`, but without a cause whose
/// text the message already ends with (a library error that also prints its source would
/// otherwise read "x: No such file (os error 2): No such file (os error 2)").
pub fn error_message(err: &anyhow::Error) -> String {
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
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
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
