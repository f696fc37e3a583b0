//! `--help`: every flag with its env var and default, and the exit codes.

use std::process::Command;

use crate::support::{text, CLIENT};

fn help(args: &[&str]) -> String {
    let out = Command::new(CLIENT).env_clear().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn help_lists_every_flag_with_env_and_default_and_the_exit_codes() {
    let got = help(&["--help"]);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/run_help.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap();
    assert_eq!(got, expected, "refresh with UPDATE_SNAPSHOTS=1 cargo test -p gostint-client --test it help");
    // The original's single-dash spelling and `run --help` show the same.
    assert_eq!(help(&["-help"]), got);
    assert_eq!(help(&["run", "--help"]), got);
}

#[test]
fn subcommand_help_explains_which_token_is_used() {
    for sub in ["status", "list", "kill", "delete"] {
        let h = help(&[sub, "--help"]);
        assert!(h.contains("accessor:<accessor>"), "{sub}: {h}");
        assert!(h.contains("--json"), "{sub}: {h}");
        assert!(h.contains("Exit codes:"), "{sub}: {h}");
    }
}

#[test]
fn unknown_flags_are_usage_errors_with_exit_2() {
    let out = Command::new(CLIENT).env_clear().args(["-nosuchflag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-nosuchflag"), "{}", text(&out.stderr));
}
