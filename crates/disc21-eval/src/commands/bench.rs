//! `disc21-eval bench` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval bench`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`bench` is not implemented yet")
}
