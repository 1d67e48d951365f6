//! `disc21-eval metrics` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval metrics`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`metrics` is not implemented yet")
}
