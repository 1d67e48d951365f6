//! `disc21-eval`: the benchmark's command line, without libtorch. Commands that run no model
//! run here and start at once; the others are handed to `disc21-eval-torch`, installed beside
//! this binary.

use std::process::ExitCode;

use clap::Parser;
use disc21_eval::cli::app::Cli;
use image_sim::cli::{exec_sibling, main_with};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.needs_model() {
        // Before any set-up: the sibling parses the same arguments and does its own.
        let err = exec_sibling("disc21-eval-torch");
        return main_with(
            "disc21_eval",
            cli.global,
            &format!("{:?}", cli.command),
            || Err(err),
        );
    }
    main_with(
        "disc21_eval",
        cli.global,
        &format!("{:?}", cli.command),
        || {
            cli.command
                .run_without_model()
                .unwrap_or_else(|| Err(anyhow::anyhow!("this command needs disc21-eval-torch")))
        },
    )
}
