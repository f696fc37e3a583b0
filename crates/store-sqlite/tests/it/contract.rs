//! Every check of `gostint-store-contract`, one test each.

gostint_store_contract::store_contract_tests!(crate::fresh_subject);

/// The same suite through `run_all`, as a backend without the macro would run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_contract_passes_through_run_all() {
    gostint_store_contract::run_all(crate::fresh_subject).await;
}
