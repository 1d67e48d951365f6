//! `disc21-eval run` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval run`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`run` is not implemented yet")
}
