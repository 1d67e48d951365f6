//! The command line's global behaviour: an example in every subcommand's help, the documented
//! exit codes, `--quiet`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn every_subcommand_has_an_example_and_exit_codes_are_documented() {
    let top = cli(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8(top.stdout).unwrap();
    assert!(text.contains("Exit codes:"), "{text}");
    // Every subcommand listed in the top-level help.
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
    assert!(commands.len() >= 9, "{commands:?}");
    for c in &commands {
        let out = cli(&[c, "--help"]);
        assert!(out.status.success(), "{c} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains(&format!("Example:\n  disc21-eval {c} ")),
            "`disc21-eval {c} --help` has no example:\n{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2_failures_exit_1() {
    assert_eq!(cli(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(cli(&["metrics", "--no-such-flag"]).status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let missing = missing.to_str().unwrap();
    let out = cli(&[
        "metrics",
        "--predictions",
        missing,
        "--ground-truth",
        missing,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

#[test]
fn quiet_prints_nothing_on_stderr_but_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let args = [
        "generate",
        "--out",
        data,
        "--references",
        "4",
        "--queries",
        "2",
        "--min-side",
        "32",
        "--max-side",
        "48",
    ];
    let mut quiet = vec!["--quiet"];
    quiet.extend(args);
    let ok = cli(&quiet);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        ok.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Same command again: refused (no --force), and the error still reaches stderr.
    let refused = cli(&quiet);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("--force"),
        "{err}"
    );
    // Without --quiet, RUST_LOG=debug shows structured log lines.
    let out = Command::new(env!("CARGO_BIN_EXE_disc21-eval"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG disc21_eval"), "{err}");
}
