//! `disc21-eval index` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `disc21-eval index`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`index` is not implemented yet")
}
