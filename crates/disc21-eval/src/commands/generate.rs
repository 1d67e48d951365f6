//! `disc21-eval generate` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval generate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`generate` is not implemented yet")
}
