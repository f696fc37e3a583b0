//! The quick set of the reliability suite (RELIABILITY.md, "Scenarios"), run by CI through
//! `scripts/test`: every scenario marked `quick` against the real gostint binary, OpenBao,
//! Docker and PostgreSQL. Fails if any scenario fails (anything lost, stuck, duplicated or
//! out of order, or one of its own checks).

use gostint_reliability::{figures, scenarios, Ctx};

/// Builds the server binary this suite drives, unless `GOSTINT_BIN` names one (so a test run
/// of this crate alone does not drive a stale binary).
fn build_gostint() {
    if std::env::var_os("GOSTINT_BIN").is_some() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = std::process::Command::new(cargo)
        .args(["build", "-p", "gostint-server", "--bin", "gostint"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .status()
        .expect("cargo build of the gostint binary");
    assert!(st.success(), "cargo build -p gostint-server --bin gostint failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quick_scenarios_pass() {
    build_gostint();
    let Some(ctx) = Ctx::new().await.expect("suite context") else { return };
    let list = scenarios::select(None, true).expect("the quick set");
    let figs = scenarios::run_all(&ctx, &list).await;
    println!("\n{}", figures::table(&figs));
    let failed: Vec<String> = figs.iter().filter(|f| !f.passed()).map(|f| f.line()).collect();
    assert!(failed.is_empty(), "failed scenarios:\n{}", failed.join("\n"));
}
