//! `disc21-eval search` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval search`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`search` is not implemented yet")
}
