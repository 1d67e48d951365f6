//! `image-sim-torch`: the command line with libtorch linked, which runs every command. Users
//! call `image-sim`, which hands it the commands that run a model.

use std::process::ExitCode;

use clap::Parser;
use image_sim::cli::app::Cli;
use image_sim::cli::main_with;

fn main() -> ExitCode {
    let cli = Cli::parse();
    image_sim::cli::progress::show_downloads();
    let shown = format!("{:?}", cli.command);
    main_with("image_sim", cli.global, &shown, || cli.command.run())
}
