//! `disc21-eval merge` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval merge`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`merge` is not implemented yet")
}
