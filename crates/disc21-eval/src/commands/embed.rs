//! `disc21-eval embed` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval embed`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`embed` is not implemented yet")
}
