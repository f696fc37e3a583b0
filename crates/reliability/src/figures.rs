//! What a scenario measured: one line each, and a table for the run.
//!
//! A scenario fails when anything accepted is lost or stuck, when a job ran twice or out of
//! its queue's order, or when one of its own checks failed (the reason is printed).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::api::Codes;
use crate::audit::Audit;
use crate::sample::Res;

/// One scenario's figures.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Scenario name.
    pub scenario: String,
    /// Jobs the API accepted (200 to the POST).
    pub accepted: u64,
    /// Accepted jobs gone (404) or never seen.
    pub lost: u64,
    /// Accepted jobs not final at the end (queued, running or stopping).
    pub stuck: u64,
    /// Jobs whose container started more than once.
    pub duplicated: u64,
    /// FIFO violations within a queue (a job started before an earlier one of its queue, or
    /// while another of its queue was active).
    pub out_of_order: u64,
    /// Time to recover after the fault, seconds (scenario-defined).
    pub recover_s: Option<f64>,
    /// HTTP codes seen by the scenario's clients.
    pub codes: BTreeMap<String, u64>,
    /// RSS MiB: before, peak, after.
    pub rss: [f64; 3],
    /// Open descriptors: before, peak, after.
    pub fds: [usize; 3],
    /// Scenario-specific figures (reads/s, exit time, …), in order.
    pub extra: Vec<(String, String)>,
    /// Failed checks.
    pub failures: Vec<String>,
    /// Why it did not run, if skipped.
    pub skipped: Option<String>,
    /// Wall time of the scenario, seconds.
    pub took_s: f64,
}

impl Figures {
    /// Empty figures for this scenario.
    pub fn new(scenario: &str) -> Self {
        Self { scenario: scenario.to_string(), ..Self::default() }
    }

    /// Records a failed check unless `ok`.
    pub fn check(&mut self, ok: bool, why: impl Into<String>) {
        if !ok {
            self.failures.push(why.into());
        }
    }

    /// A scenario-specific figure.
    pub fn note(&mut self, key: &str, value: impl std::fmt::Display) {
        self.extra.push((key.to_string(), value.to_string()));
    }

    /// Adds an audit's counts (and names a few of the jobs concerned).
    pub fn absorb(&mut self, a: &Audit) {
        self.accepted += a.accepted as u64;
        self.lost += a.lost.len() as u64;
        self.stuck += a.stuck.len() as u64;
        self.duplicated += a.duplicated.len() as u64;
        self.out_of_order += a.out_of_order.len() as u64;
        for (what, ids) in
            [("lost", &a.lost), ("stuck", &a.stuck), ("duplicated", &a.duplicated), ("out of order", &a.out_of_order)]
        {
            if !ids.is_empty() {
                let few: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
                self.failures.push(format!("{} {what}: {}", ids.len(), few.join(", ")));
            }
        }
    }

    /// Adds the codes a client saw.
    pub fn codes_from(&mut self, c: &Codes) {
        for (k, v) in c.snapshot() {
            *self.codes.entry(k).or_default() += v;
        }
    }

    /// Before / peak / after of the node.
    pub fn resources(&mut self, (b, p, a): (Res, Res, Res)) {
        self.rss = [b.rss_mib, p.rss_mib, a.rss_mib];
        self.fds = [b.fds, p.fds, a.fds];
    }

    /// Marks it skipped.
    pub fn skip(mut self, why: impl Into<String>) -> Self {
        self.skipped = Some(why.into());
        self
    }

    /// Passed: nothing lost, stuck, duplicated or out of order and every check held.
    pub fn passed(&self) -> bool {
        self.skipped.is_some()
            || (self.failures.is_empty()
                && self.lost == 0
                && self.stuck == 0
                && self.duplicated == 0
                && self.out_of_order == 0)
    }

    /// `PASS`, `FAIL: reasons` or `SKIP: why`.
    pub fn verdict(&self) -> String {
        if let Some(why) = &self.skipped {
            return format!("SKIP: {why}");
        }
        if self.passed() {
            return "PASS".into();
        }
        let mut why = self.failures.clone();
        if why.is_empty() {
            why.push("lost, stuck, duplicated or out of order".into());
        }
        format!("FAIL: {}", why.join("; "))
    }

    fn codes_text(&self) -> String {
        if self.codes.is_empty() {
            return "-".into();
        }
        self.codes.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
    }

    /// The one-line summary printed when the scenario ends.
    pub fn line(&self) -> String {
        let mut s = format!(
            "[{}] accepted={} lost={} stuck={} duplicated={} out_of_order={} recover_s={} codes={} rss_mib={:.0}/{:.0}/{:.0} fds={}/{}/{} took_s={:.1}",
            self.scenario,
            self.accepted,
            self.lost,
            self.stuck,
            self.duplicated,
            self.out_of_order,
            self.recover_s.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()),
            self.codes_text(),
            self.rss[0],
            self.rss[1],
            self.rss[2],
            self.fds[0],
            self.fds[1],
            self.fds[2],
            self.took_s,
        );
        for (k, v) in &self.extra {
            let _ = write!(s, " {k}={v}");
        }
        let _ = write!(s, " => {}", self.verdict());
        s
    }
}

/// The run's table (Markdown, so it can be pasted into RELIABILITY.md).
pub fn table(figs: &[Figures]) -> String {
    let mut s = String::from(
        "| scenario | accepted | lost | stuck | dup | out of order | recover s | HTTP codes | RSS MiB before/peak/after | fds before/peak/after | other | s | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for f in figs {
        let other = f.extra.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0}/{:.0}/{:.0} | {}/{}/{} | {} | {:.1} | {} |",
            f.scenario,
            f.accepted,
            f.lost,
            f.stuck,
            f.duplicated,
            f.out_of_order,
            f.recover_s.map(|r| format!("{r:.1}")).unwrap_or_else(|| "-".into()),
            f.codes_text(),
            f.rss[0],
            f.rss[1],
            f.rss[2],
            f.fds[0],
            f.fds[1],
            f.fds[2],
            if other.is_empty() { "-".into() } else { other },
            f.took_s,
            f.verdict().replace('|', "/"),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anything_lost_stuck_duplicated_or_out_of_order_fails() {
        let ok = Figures::new("x");
        assert!(ok.passed());
        for f in [
            Figures { lost: 1, ..Figures::new("x") },
            Figures { stuck: 1, ..Figures::new("x") },
            Figures { duplicated: 1, ..Figures::new("x") },
            Figures { out_of_order: 1, ..Figures::new("x") },
        ] {
            assert!(!f.passed());
            assert!(f.verdict().starts_with("FAIL"));
        }
        let mut f = Figures::new("x");
        f.check(false, "exit took 40 s");
        assert_eq!(f.verdict(), "FAIL: exit took 40 s");
        assert!(f.line().contains("[x] accepted=0"));
        assert!(table(&[f]).contains("| x | 0 |"));
    }
}
