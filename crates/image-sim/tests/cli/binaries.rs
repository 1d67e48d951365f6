//! `image-sim` hands model commands to `image-sim-torch` with the same arguments and exit
//! codes. (That the release `image-sim` does not link libtorch at all is checked by
//! `scripts/startup.sh`, which the test script runs: development builds, without LTO, may keep
//! it linked.)

use std::process::Command;

use crate::{BIN, cli};

#[test]
fn every_command_has_an_example_and_exit_codes_are_documented() {
    let top = cli(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8(top.stdout).unwrap();
    assert!(text.contains("Exit codes:"), "{text}");
    let commands: Vec<String> = text
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    for c in [
        "embed",
        "merge",
        "index",
        "search",
        "preprocess",
        "bench",
        "serve",
    ] {
        assert!(commands.iter().any(|x| x == c), "{c} missing: {commands:?}");
    }
    for c in &commands {
        let out = cli(&[c, "--help"]);
        assert!(out.status.success(), "{c} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains(&format!("Example:\n  image-sim {c} ")),
            "`image-sim {c} --help` has no example:\n{help}"
        );
    }
}

#[test]
fn model_commands_run_through_the_sibling_with_the_same_exit_codes() {
    // A usage error is caught before anything starts: 2, from either binary.
    assert_eq!(cli(&["embed", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(cli(&["no-such-command"]).status.code(), Some(2));
    // A failure inside the sibling: 1, with its error on standard error.
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&[
        "embed",
        "--test-model",
        "2",
        "--images",
        dir.path().join("missing").to_str().unwrap(),
        "--out",
        dir.path().join("e.npy").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn a_missing_sibling_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("image-sim");
    std::fs::copy(BIN, &lone).unwrap();
    let out = Command::new(&lone)
        .args([
            "embed",
            "--test-model",
            "2",
            "--images",
            "x",
            "--out",
            "y.npy",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("image-sim-torch") && err.contains("not"),
        "{err}"
    );
    // Commands without a model still run.
    let help = Command::new(&lone)
        .args(["index", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
}
