//! The command line: clap definitions and the original's single-dash spellings.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Exit codes, documented in `--help`.
pub const EXIT_HELP: &str = "\
Exit codes:
  0      the job succeeded (or --wait=false: submitted)
  N      the job failed with return code N (1 if it failed without one, e.g. killed)
  2      usage, Vault, TLS, transport or HTTP error (nothing ran, or the result is unknown to the client)
  120    the job is notauthorised (its wrapped secret id could not be used: possible interception)
  121    the job's status is unknown (its gostint node vanished)

The original single-dash spellings work too: -url x, -flag=value, -tty, -wait=false.";

/// gostint-client: run a job on gostint through Vault's secure flow, or look at jobs.
#[derive(Debug, Parser)]
#[command(name = "gostint-client", version, after_help = EXIT_HELP)]
pub struct Cli {
    /// The subcommand (`run` when none is given).
    #[command(subcommand)]
    pub command: Command,
}

/// What to do (no subcommand = `run`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a job and (by default) wait for it, printing its output (the default command).
    #[command(after_help = EXIT_HELP)]
    Run(Box<RunArgs>),
    /// Show one job.
    Status(IdArgs),
    /// List your jobs, newest first (10 a page).
    List(ListArgs),
    /// Kill a job (queued: fails at once; running: stopped with the server's grace period).
    Kill(IdArgs),
    /// Delete a job that is not running.
    Delete(IdArgs),
}

/// Where gostint and Vault are, and who the requestor is.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// gostint's base URL, e.g. https://gostint.example:3232
    #[arg(long, env = "GOSTINT_URL", hide_env_values = true)]
    pub url: String,
    /// Vault/OpenBao address
    #[arg(long = "vault-url", env = "VAULT_ADDR", hide_env_values = true)]
    pub vault_url: String,
    /// Requestor's Vault token (a value, or @file)
    #[arg(long = "vault-token", env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,
    /// Requestor's AppRole role_id (a value, or @file); needs --vault-secretid
    #[arg(long = "vault-roleid", env = "GOSTINT_CLIENT_ROLEID", hide_env_values = true)]
    pub vault_roleid: Option<String>,
    /// Requestor's AppRole secret_id (a value, or @file)
    #[arg(long = "vault-secretid", env = "GOSTINT_CLIENT_SECRETID", hide_env_values = true)]
    pub vault_secretid: Option<String>,
    /// PEM CA bundle to verify gostint's certificate (default: the system roots)
    #[arg(long = "ca-cert")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify gostint's TLS certificate (prints a warning; development only)
    #[arg(long = "insecure-skip-verify", action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub insecure_skip_verify: bool,
    /// Debug lines on stderr (never tokens)
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub debug: bool,
}

/// `run`: the job and how to send it.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// gostint's AppRole name, also the transit key name
    #[arg(long = "gostint-approle", default_value = "gostint-role")]
    pub gostint_approle: String,
    /// Base job definition as JSON (a value, or @file)
    #[arg(long = "job-json")]
    pub job_json: Option<String>,
    /// Queue name (overrides the job JSON)
    #[arg(long)]
    pub qname: Option<String>,
    /// Container image (overrides the job JSON)
    #[arg(long)]
    pub image: Option<String>,
    /// IfNotPresent or Always
    #[arg(long = "image-pull-policy")]
    pub image_pull_policy: Option<String>,
    /// A folder (packed as tar.gz, ./ names, uid/gid 2001) or an existing .tar.gz; `.` = cwd
    #[arg(long)]
    pub content: Option<PathBuf>,
    /// Entrypoint as a JSON array string
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Command as a JSON array string
    #[arg(long)]
    pub run: Option<String>,
    /// Working directory in the container
    #[arg(long = "run-dir")]
    pub run_dir: Option<String>,
    /// Environment as a JSON array string of NAME=value
    #[arg(long = "env-vars")]
    pub env_vars: Option<String>,
    /// Secret references as a JSON array string of var@path.key
    #[arg(long = "secret-refs")]
    pub secret_refs: Option<String>,
    /// yaml (/secrets.yml) or json (/secrets.json)
    #[arg(long = "secret-filetype")]
    pub secret_filetype: Option<String>,
    /// Carry on when Vault answers a secret read with warnings
    #[arg(long = "cont-on-warnings", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub cont_on_warnings: Option<bool>,
    /// Run the container with a TTY (one combined output stream)
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tty: Option<bool>,
    /// Send the job in plain mode (job + wrapped secret id) instead of cubbyhole + transit
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub plain: bool,
    /// Wait for the job to end (--wait=false: print the submit answer and exit 0)
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "true", default_missing_value = "true")]
    pub wait: bool,
    /// Seconds between polls
    #[arg(long = "poll-interval", default_value = "1")]
    pub poll_interval: f64,
    /// TTL of the API token made for this run (revoked at exit anyway)
    #[arg(long = "api-token-ttl", default_value = "1h")]
    pub api_token_ttl: String,
    /// TTL of the wrapped secret id (keep it short: it travels outside the encryption)
    #[arg(long = "wrap-ttl", default_value = "1h")]
    pub wrap_ttl: String,
    /// Print the final job as JSON on stdout instead of its output
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub json: bool,
}

/// A subcommand on one job.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// The job id (24 hex characters)
    pub id: String,
    /// JSON output for scripts
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub json: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// Jobs to skip (pages of 10)
    #[arg(long, default_value = "0")]
    pub skip: u64,
    /// JSON output for scripts
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub json: bool,
}

const SUBCOMMANDS: &[&str] = &["run", "status", "list", "kill", "delete", "help"];

/// Accepts the original's spellings: `-flag value` and `-flag=value` become `--flag …`, and a
/// command line without a subcommand runs a job (`run` is inserted).
pub fn normalise(argv: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(argv.len() + 1);
    let mut it = argv.into_iter();
    if let Some(prog) = it.next() {
        out.push(prog);
    }
    let rest: Vec<String> = it
        .map(|a| {
            let long_name = a
                .strip_prefix('-')
                .filter(|r| r.len() > 1 && !r.starts_with('-') && r.as_bytes()[0].is_ascii_alphabetic());
            match long_name {
                Some(r) if r != "h" && r != "V" => format!("--{r}"),
                _ => a,
            }
        })
        .collect();
    let first = rest.first().map(String::as_str);
    let is_sub = first.is_some_and(|f| SUBCOMMANDS.contains(&f));
    let is_top_flag = matches!(first, Some("--help" | "-h" | "--version" | "-V"));
    if !is_sub && !is_top_flag {
        out.push("run".into());
    }
    out.extend(rest);
    out
}

/// A value, or the contents of a file when it starts with `@` (final newline dropped).
pub fn value_or_file(v: &str) -> anyhow::Result<String> {
    match v.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
            Ok(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string())
        }
        None => Ok(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        normalise(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn single_dash_spellings_and_the_implicit_run() {
        assert_eq!(
            n(&["gc", "-url", "https://x", "-tty", "-wait=false", "--qname", "q"]),
            ["gc", "run", "--url", "https://x", "--tty", "--wait=false", "--qname", "q"]
        );
        assert_eq!(n(&["gc", "status", "-json", "abc"]), ["gc", "status", "--json", "abc"]);
        assert_eq!(n(&["gc", "--help"]), ["gc", "--help"]);
        // Values that start with a dash but are not flags stay as they are.
        assert_eq!(n(&["gc", "run", "--run", "-1"]), ["gc", "run", "--run", "-1"]);
    }

    #[test]
    fn flags_parse_with_both_spellings() {
        let cli = Cli::try_parse_from(n(&[
            "gc",
            "-url=https://g",
            "-vault-url",
            "http://v",
            "-vault-token",
            "t",
            "-tty",
            "-wait=false",
            "-plain",
        ]))
        .unwrap();
        let Command::Run(r) = cli.command else { panic!("run") };
        let r = *r;
        assert_eq!(r.common.url, "https://g");
        assert_eq!(r.tty, Some(true));
        assert!(!r.wait);
        assert!(r.plain);
        assert_eq!(r.cont_on_warnings, None, "not given: the job JSON decides");
        assert_eq!(r.gostint_approle, "gostint-role");
    }
}
