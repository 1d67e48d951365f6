//! `image-sim`: the command line, without libtorch. Commands that run no model run here and
//! start at once; the others are handed to `image-sim-torch`, installed beside this binary.

use std::process::ExitCode;

use clap::Parser;
use image_sim::cli::app::Cli;
use image_sim::cli::{exec_sibling, main_with};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.needs_model() {
        // Before any set-up: the sibling parses the same arguments and does its own.
        let err = exec_sibling("image-sim-torch");
        return main_with(
            "image_sim",
            cli.global,
            &format!("{:?}", cli.command),
            || Err(err),
        );
    }
    main_with(
        "image_sim",
        cli.global,
        &format!("{:?}", cli.command),
        || {
            cli.command
                .run_without_model()
                .unwrap_or_else(|| Err(anyhow::anyhow!("this command needs image-sim-torch")))
        },
    )
}
