//! `disc21-eval-torch`: the benchmark's command line with libtorch linked, which runs every
//! command. Users call `disc21-eval`, which hands it the commands that run a model.

use std::process::ExitCode;

use clap::Parser;
use disc21_eval::cli::app::Cli;
use image_sim::cli::main_with;

fn main() -> ExitCode {
    let cli = Cli::parse();
    image_sim::cli::progress::show_downloads();
    let shown = format!("{:?}", cli.command);
    main_with("disc21_eval", cli.global, &shown, || cli.command.run())
}
