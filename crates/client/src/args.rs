//! The command line: clap definitions, and [`normalise`], which turns the original client's
//! single-dash spellings into clap's and supplies the implicit `run` subcommand.

use std::path::PathBuf;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// `--help` epilogue of every command: exit codes, other commands, the original spellings.
pub const AFTER_HELP: &str = "\
Exit codes:
  0        the job succeeded; with --wait=false: it was submitted; other commands: done
  1-255    the job failed with that return code (1 when it has none: killed, timed out,
           or a gostint-side failure such as a missing image)
  2        usage, Vault, TLS, transport or HTTP error, including any non-200 answer from
           gostint (the job may not exist, or its outcome is unknown to the client)
  120      the job ended notauthorised (its wrapped secret id could not be used: expired
           while queued, or possibly intercepted)
  121      the job's outcome is unknown (its gostint node stopped reporting)
  130/143  interrupted by SIGINT/SIGTERM while waiting (the job carries on; every token
           the client made is revoked first)
A job that itself exits 2, 120, 121, 130 or 143 cannot be told apart by the code alone:
use --json, or `gostint-client status ID`.

Commands: [run] (the default), status ID, list [--skip N] [--status S] [--queue Q]
[--limit N], kill ID, delete ID, logs ID [-f], wait ID;
`gostint-client <command> --help` for each. status/list/kill/delete act with the
requestor's own Vault token (see `gostint-client status --help`).

Values of --vault-token, --vault-roleid, --vault-secretid, --job-json, --entrypoint,
--run, --env-vars and --secret-refs starting with @ are read from that file (final
newline dropped). The original single-dash spellings work too: -url x, -flag=value,
-tty, -wait=false.";

/// `status`/`list`/`kill`/`delete`: which token they use, and why (after each one's summary).
macro_rules! subcommand_about {
    ($summary:literal) => {
        concat!(
            $summary,
            "\n\n",
            "\
These commands act with the requestor's own Vault token (the --vault-token, or the token
of the --vault-roleid/--vault-secretid login, revoked at exit), not with a child token:
gostint identifies a tenant by the token's Vault entity, or by `accessor:<accessor>` when
it has none. Tokens from an AppRole (or any entity-backed) login share their entity with
their children, so a job submitted by `gostint-client run` with the same credentials is
yours here. A bare token without an entity (e.g. a token made by `token create` from the
root token) only sees jobs submitted with that very token, not those submitted by `run`
(which uses a fresh child API token per run); root and GOSTINT_ADMIN_POLICY tokens see
every job."
        )
    };
}

/// gostint-client: run a job on gostint through Vault's secure flow, or look at jobs.
#[derive(Debug, Parser)]
#[command(name = "gostint-client", version = gostint_core::VERSION, after_help = AFTER_HELP)]
pub struct Cli {
    /// The subcommand (`run` when none is given: see [`normalise`]).
    #[command(subcommand)]
    pub command: Command,
}

/// What to do (no subcommand = `run`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a job and (by default) wait for it, printing its output (the default command).
    #[command(
        after_help = AFTER_HELP,
        override_usage = "gostint-client [run] [OPTIONS] --url <URL> --vault-url <VAULT_URL>"
    )]
    Run(Box<RunArgs>),
    /// Show one job: its fields, then its output and stderr.
    #[command(long_about = subcommand_about!("Show one job: its fields, then its output and stderr."), after_help = AFTER_HELP)]
    Status(IdArgs),
    /// List your jobs, newest first, 10 a page.
    #[command(long_about = subcommand_about!("List your jobs, newest first, 10 a page."), after_help = AFTER_HELP)]
    List(ListArgs),
    /// Kill a job (queued: fails at once; running: stopped with the server's grace period).
    #[command(long_about = subcommand_about!("Kill a job (queued: fails at once; running: stopped with the server's grace period)."), after_help = AFTER_HELP)]
    Kill(IdArgs),
    /// Delete a job that is not running or stopping (a queued one is cancelled).
    #[command(long_about = subcommand_about!("Delete a job that is not running or stopping (a queued one is cancelled)."), after_help = AFTER_HELP)]
    Delete(IdArgs),
    /// Print a job's output so far (stdout and stderr on their own streams); -f follows it live to the end.
    #[command(long_about = subcommand_about!("Print a job's output so far (stdout and stderr on their own streams); -f follows it live to the end, then exits as `run` would."), after_help = AFTER_HELP)]
    Logs(LogsArgs),
    /// Wait for a job to end (long-poll); exit with its code, as `run` does.
    #[command(long_about = subcommand_about!("Wait for a job to end (long-poll); prints its final status, exits with its code as `run` does."), after_help = AFTER_HELP)]
    Wait(IdArgs),
}

/// Where gostint and Vault are, and who the requestor is: shared by every command.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// gostint's base URL, e.g. https://gostint.example:3232
    #[arg(help_heading = "gostint and Vault", long, env = "GOSTINT_URL", hide_env_values = true)]
    pub url: String,
    /// PEM CA bundle that gostint's certificate must chain to, instead of the system roots (a self-signed server certificate given here is pinned: name and dates still checked)
    #[arg(help_heading = "gostint and Vault", long = "ca-cert", env = "GOSTINT_CACERT", hide_env_values = true)]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify gostint's TLS certificate (warns on stderr; development only)
    #[arg(help_heading = "gostint and Vault", long = "insecure-skip-verify", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub insecure_skip_verify: bool,
    /// Vault/OpenBao address
    #[arg(help_heading = "gostint and Vault", long = "vault-url", env = "VAULT_ADDR", hide_env_values = true)]
    pub vault_url: String,
    /// Requestor's Vault token (a value, or @file); AppRole credentials, when given, win
    #[arg(help_heading = "gostint and Vault", long = "vault-token", env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,
    /// Requestor's AppRole role_id (a value, or @file); needs --vault-secretid
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-roleid",
        env = "GOSTINT_CLIENT_ROLEID",
        hide_env_values = true
    )]
    pub vault_roleid: Option<String>,
    /// Requestor's AppRole secret_id (a value, or @file); needs --vault-roleid
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-secretid",
        env = "GOSTINT_CLIENT_SECRETID",
        hide_env_values = true
    )]
    pub vault_secretid: Option<String>,
    /// PEM CA bundle for Vault's certificate, instead of the system roots
    #[arg(help_heading = "gostint and Vault", long = "vault-ca-cert", env = "VAULT_CACERT", hide_env_values = true)]
    pub vault_ca_cert: Option<PathBuf>,
    /// Directory of PEM CA files for Vault's certificate (--vault-ca-cert wins when both are given)
    #[arg(help_heading = "gostint and Vault", long = "vault-ca-path", env = "VAULT_CAPATH", hide_env_values = true)]
    pub vault_ca_path: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with Vault; needs --vault-client-key
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-client-cert",
        env = "VAULT_CLIENT_CERT",
        hide_env_values = true
    )]
    pub vault_client_cert: Option<PathBuf>,
    /// PEM private key of --vault-client-cert
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-client-key",
        env = "VAULT_CLIENT_KEY",
        hide_env_values = true
    )]
    pub vault_client_key: Option<PathBuf>,
    /// Name Vault's certificate must be valid for, instead of --vault-url's host (the TLS SNI still names that host)
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-tls-server-name",
        env = "VAULT_TLS_SERVER_NAME",
        hide_env_values = true
    )]
    pub vault_tls_server_name: Option<String>,
    /// Do not verify Vault's TLS certificate (warns on stderr; development only)
    #[arg(help_heading = "gostint and Vault", long = "vault-skip-verify", env = "VAULT_SKIP_VERIFY", hide_env_values = true, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub vault_skip_verify: bool,
    /// Vault Enterprise/OpenBao namespace (sent as X-Vault-Namespace)
    #[arg(
        help_heading = "gostint and Vault",
        long = "vault-namespace",
        env = "VAULT_NAMESPACE",
        hide_env_values = true
    )]
    pub vault_namespace: Option<String>,
    /// Debug lines on stderr (calls made, accessors of the tokens made; never a token)
    #[arg(help_heading = "Output", long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub debug: bool,
    /// Colour the [status] line: auto (a terminal, unless NO_COLOR is set), always or never
    #[arg(help_heading = "Output", long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: crate::colour::ColorWhen,
}

/// `run`: the job and how to send it.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// gostint's AppRole name, also the transit key name
    #[arg(
        help_heading = "Submission and waiting",
        long = "gostint-approle",
        env = "GOSTINT_APPROLE",
        hide_env_values = true,
        default_value = "gostint-role"
    )]
    pub gostint_approle: String,
    /// Base job definition, a JSON object (a value, or @file); the flags below override it
    #[arg(help_heading = "Job", long = "job-json")]
    pub job_json: Option<String>,
    /// Queue name (qname)
    #[arg(help_heading = "Job", long)]
    pub qname: Option<String>,
    /// Container image (container_image; else the job JSON's, else content's gostint.yml)
    #[arg(help_heading = "Job", long)]
    pub image: Option<String>,
    /// IfNotPresent or Always (image_pull_policy; gostint's default: IfNotPresent)
    #[arg(help_heading = "Job", long = "image-pull-policy")]
    pub image_pull_policy: Option<String>,
    /// A folder (packed as tar.gz: ./ names, uid/gid 2001) or an existing .tar.gz; `.` = cwd
    #[arg(help_heading = "Job", long)]
    pub content: Option<PathBuf>,
    /// Entrypoint, a JSON array string (a value, or @file)
    #[arg(help_heading = "Job", long)]
    pub entrypoint: Option<String>,
    /// Command, a JSON array string (a value, or @file)
    #[arg(help_heading = "Job", long)]
    pub run: Option<String>,
    /// Working directory in the container (working_directory)
    #[arg(help_heading = "Job", long = "run-dir")]
    pub run_dir: Option<String>,
    /// Environment, a JSON array string of NAME=value (a value, or @file)
    #[arg(help_heading = "Job", long = "env-vars")]
    pub env_vars: Option<String>,
    /// Secret references, a JSON array string of var@path.key (a value, or @file)
    #[arg(help_heading = "Job", long = "secret-refs")]
    pub secret_refs: Option<String>,
    /// yaml (/secrets.yml) or json (/secrets.json) (secret_file_type; gostint's default: yaml)
    #[arg(help_heading = "Job", long = "secret-filetype")]
    pub secret_filetype: Option<String>,
    /// Carry on when Vault answers a secret read with warnings (default: the job JSON's, else false)
    #[arg(help_heading = "Job", long = "cont-on-warnings", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub cont_on_warnings: Option<bool>,
    /// Run the container with a TTY: one combined output stream (default: the job JSON's, else false)
    #[arg(help_heading = "Job", long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub tty: Option<bool>,
    /// Send the job in plain mode (job + wrapped secret id) instead of cubbyhole + transit
    #[arg(help_heading = "Submission and waiting", long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub plain: bool,
    /// Wait for the job to end (--wait=false: print the submit answer and exit 0)
    #[arg(help_heading = "Submission and waiting", long, num_args = 0..=1, require_equals = true, default_value = "true",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub wait: bool,
    /// Seconds between polls (decimals allowed)
    #[arg(help_heading = "Submission and waiting", long = "poll-interval", default_value = "1", value_parser = parse_interval)]
    pub poll_interval: f64,
    /// TTL of the `default` API token made for this run; must outlast the job (revoked at exit anyway)
    #[arg(help_heading = "Submission and waiting", long = "api-token-ttl", default_value = "1h")]
    pub api_token_ttl: String,
    /// TTL of the wrapped secret id; must outlast the wait in the queue (it travels outside the encryption)
    #[arg(help_heading = "Submission and waiting", long = "wrap-ttl", default_value = "1h")]
    pub wrap_ttl: String,
    /// Print the final job (or the submit answer) as JSON on stdout instead of its output
    #[arg(help_heading = "Output", long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub json: bool,
    /// An environment variable NAME=value for the job (repeatable; added after --env-vars)
    #[arg(help_heading = "Job", short = 'e', long = "env", value_name = "NAME=value")]
    pub env: Vec<String>,
    /// A secret reference VAR=PATH.KEY (repeatable; added after --secret-refs as VAR@PATH.KEY)
    #[arg(help_heading = "Job", long = "secret", value_name = "VAR=PATH.KEY")]
    pub secret: Vec<String>,
    /// The job's command after `--` (its `run`), instead of --run: gostint-client … -- sh -c 'echo hi'
    #[arg(help_heading = "Job", last = true, value_name = "CMD", conflicts_with = "run")]
    pub cmd: Vec<String>,
}

/// `status`, `kill`, `delete`: one job.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// The job id (24 hex characters)
    pub id: String,
    /// JSON output for scripts (gostint's answer as it came)
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Where gostint and Vault are, who the requestor is.
    #[command(flatten)]
    pub common: Common,
    /// The job id (24 hex characters)
    pub id: String,
    /// Follow the output live until the job ends (exit code as `run`'s)
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub follow: bool,
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
    /// Only jobs with this status (queued, running, stopping, success, failed, notauthorised, unknown)
    #[arg(long)]
    pub status: Option<String>,
    /// Only jobs of this queue (qname)
    #[arg(long)]
    pub queue: Option<String>,
    /// Show at most this many jobs (with --status/--queue, pages are read until that many match)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub limit: Option<u64>,
    /// JSON output for scripts (gostint's answer as it came)
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub json: bool,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.01 => Ok(v),
        _ => Err("expected a number of seconds of at least 0.01".into()),
    }
}

/// The long flags clap knows (over every subcommand), each with whether it takes its value
/// from the next argument (`--url x`) rather than only after `=` (`--tty=false`).
fn long_flags() -> Vec<(String, bool)> {
    let cli = Cli::command();
    let mut out: Vec<(String, bool)> = vec![("help".into(), false), ("version".into(), false)];
    for sub in cli.get_subcommands() {
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                let takes_next = arg.get_action().takes_values() && !arg.is_require_equals_set();
                if !out.iter().any(|(n, _)| n == long) {
                    out.push((long.to_string(), takes_next));
                }
            }
        }
    }
    out
}

/// `nosuchflag`, `no-such_flag`: two or more characters, a letter first.
fn looks_like_long_flag(name: &str) -> bool {
    name.len() > 1
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const SUBCOMMANDS: &[&str] = &["run", "status", "list", "kill", "delete", "logs", "wait", "help"];

/// Accepts the original client's command lines.
///
/// - A single dash before a known long flag name becomes two (`-url x` → `--url x`,
///   `-wait=false` → `--wait=false`, `-tty` → `--tty`); other single-dash words (`-h`,
///   `-V`, `-1`) and every flag's value are left alone, and so is all after `--`.
/// - No subcommand means `run`, inserted first; a subcommand named after some flags
///   (`-url x status ID`) is moved first, since every flag belongs to the subcommand.
/// - A bare `--help` shows `run --help`, which lists every flag (`gostint-client help`
///   still shows the command list).
pub fn normalise(argv: Vec<String>) -> Vec<String> {
    let flags = long_flags();
    let lookup = |name: &str| flags.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut it = argv.into_iter();
    let prog = it.next().unwrap_or_else(|| "gostint-client".into());
    let mut rest: Vec<String> = Vec::new();
    let mut first_positional: Option<usize> = None;
    let mut value_next = false;
    let mut verbatim = false;
    for arg in it {
        if verbatim || value_next {
            value_next = false;
            rest.push(arg);
            continue;
        }
        if arg == "--" {
            verbatim = true;
            rest.push(arg);
            continue;
        }
        let flag = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
        match flag {
            Some(body) if !body.is_empty() => {
                let (name, inline_value) = match body.split_once('=') {
                    Some((n, _)) => (n, true),
                    None => (body, false),
                };
                match lookup(name) {
                    Some(takes_next) => {
                        value_next = takes_next && !inline_value;
                        rest.push(format!("--{body}"));
                    }
                    // An unknown word in the original's style: clap names it (and suggests
                    // the closest flag) rather than complaining about short flag `-n`.
                    None if looks_like_long_flag(name) => rest.push(format!("--{body}")),
                    // Short flags (-h, -V) and values such as -1 go to clap as they are.
                    None => rest.push(arg),
                }
            }
            _ => {
                if first_positional.is_none() {
                    first_positional = Some(rest.len());
                }
                rest.push(arg);
            }
        }
    }
    let sub = first_positional.filter(|&i| SUBCOMMANDS.contains(&rest[i].as_str()));
    match sub {
        Some(i) => {
            let name = rest.remove(i);
            rest.insert(0, name);
        }
        None => {
            let version_only = rest.iter().any(|a| a == "--version" || a == "-V");
            if !version_only {
                rest.insert(0, "run".into());
            }
        }
    }
    std::iter::once(prog).chain(rest).collect()
}

/// A value, or the contents of a file when it starts with `@` (one final newline dropped).
///
/// # Errors
/// The file cannot be read, or is not UTF-8.
pub fn value_or_file(flag: &str, v: &str) -> anyhow::Result<String> {
    match v.strip_prefix('@') {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--{flag}: reading {path}"))?;
            let trimmed = match text.strip_suffix('\n') {
                Some(t) => t.strip_suffix('\r').unwrap_or(t),
                None => &text,
            };
            Ok(trimmed.to_string())
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

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(n(args)).unwrap()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash_and_run_is_implied() {
        assert_eq!(
            n(&["gc", "-url", "https://x", "-tty", "-wait=false", "--qname", "q"]),
            ["gc", "run", "--url", "https://x", "--tty", "--wait=false", "--qname", "q"]
        );
        assert_eq!(n(&["gc", "status", "-json", "abc"]), ["gc", "status", "--json", "abc"]);
        assert_eq!(n(&["gc", "run", "-plain=true"]), ["gc", "run", "--plain=true"]);
    }

    #[test]
    fn flag_values_and_unknown_words_are_left_alone() {
        // A value that looks like a flag stays a value.
        assert_eq!(n(&["gc", "-qname", "-url"]), ["gc", "run", "--qname", "-url"]);
        assert_eq!(n(&["gc", "run", "--run", "-1"]), ["gc", "run", "--run", "-1"]);
        // Short flags go to clap as they are; unknown words get clap's long-flag error.
        assert_eq!(n(&["gc", "-nosuchflag", "-h"]), ["gc", "run", "--nosuchflag", "-h"]);
        // Nothing after `--` is touched.
        assert_eq!(n(&["gc", "--", "-url"]), ["gc", "run", "--", "-url"]);
    }

    #[test]
    fn a_subcommand_after_flags_moves_first_and_help_shows_run() {
        assert_eq!(n(&["gc", "-url", "u", "status", "abc"]), ["gc", "status", "--url", "u", "abc"]);
        // The value of --qname is not a subcommand.
        assert_eq!(n(&["gc", "-qname", "list"]), ["gc", "run", "--qname", "list"]);
        assert_eq!(n(&["gc", "--help"]), ["gc", "run", "--help"]);
        assert_eq!(n(&["gc", "-help"]), ["gc", "run", "--help"]);
        assert_eq!(n(&["gc", "help"]), ["gc", "help"]);
        assert_eq!(n(&["gc", "--version"]), ["gc", "--version"]);
        assert_eq!(n(&["gc"]), ["gc", "run"]);
    }

    #[test]
    fn both_spellings_parse_to_the_same_flags() {
        let cli = parse(&[
            "gc",
            "-url=https://g",
            "-vault-url",
            "http://v",
            "-vault-token",
            "t",
            "-tty",
            "-wait=false",
            "-plain",
            "-poll-interval",
            "0.5",
        ]);
        let Command::Run(r) = cli.command else { panic!("run") };
        assert_eq!(r.common.url, "https://g");
        assert_eq!(r.common.vault_url, "http://v");
        assert_eq!(r.tty, Some(true));
        assert!(!r.wait);
        assert!(r.plain);
        assert!((r.poll_interval - 0.5).abs() < f64::EPSILON);
        assert_eq!(r.cont_on_warnings, None, "not given: the job JSON decides");
        assert_eq!(r.gostint_approle, "gostint-role");
    }

    #[test]
    fn booleans_take_a_value_only_after_an_equals_sign() {
        let cli = parse(&["gc", "--url", "u", "--vault-url", "v", "--tty=false", "--cont-on-warnings=1"]);
        let Command::Run(r) = cli.command else { panic!("run") };
        assert_eq!(r.tty, Some(false));
        assert_eq!(r.cont_on_warnings, Some(true));
        // `-tty false` is Go's "false is not a flag value": an unexpected argument here.
        assert!(Cli::try_parse_from(n(&["gc", "--url", "u", "--vault-url", "v", "-tty", "false"])).is_err());
    }

    #[test]
    fn subcommands_take_their_flags_in_either_order() {
        let cli = parse(&["gc", "-url", "u", "-vault-url", "v", "kill", "-json", "0123456789abcdef01234567"]);
        let Command::Kill(k) = cli.command else { panic!("kill") };
        assert!(k.json);
        assert_eq!(k.id, "0123456789abcdef01234567");
        let cli = parse(&["gc", "list", "-skip", "10", "-url", "u", "-vault-url", "v"]);
        let Command::List(l) = cli.command else { panic!("list") };
        assert_eq!(l.skip, 10);
        assert!(!l.json);
    }

    #[test]
    fn a_bad_poll_interval_is_refused() {
        assert!(Cli::try_parse_from(n(&["gc", "--url", "u", "--vault-url", "v", "--poll-interval", "0"])).is_err());
        assert!(Cli::try_parse_from(n(&["gc", "--url", "u", "--vault-url", "v", "--poll-interval", "x"])).is_err());
    }

    #[test]
    fn at_file_values_lose_one_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "s.token\r\n").unwrap();
        assert_eq!(value_or_file("vault-token", &format!("@{}", f.display())).unwrap(), "s.token");
        std::fs::write(&f, "two\n\n").unwrap();
        assert_eq!(value_or_file("x", &format!("@{}", f.display())).unwrap(), "two\n");
        assert_eq!(value_or_file("x", "plain").unwrap(), "plain");
        assert!(value_or_file("x", "@/nonexistent/file").is_err());
    }
}
