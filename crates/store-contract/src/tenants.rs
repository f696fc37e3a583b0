//! Tenants in the store (docs/design.md §10): the queue key is (tenant, qname); slots go round-robin
//! over tenants; `set_tenant_max_running` caps a tenant's active jobs; `set_tenant_max_queued`
//! caps its queued jobs strictly; `count_queued`.

use std::collections::HashSet;
use std::sync::Arc;

use gostint_core::{JobId, JobStatus, JobStore, NewJob, StoreError, Timestamp};

use crate::{alice, at, claim, finish, get, new_job, node_a, node_b, Subject};

fn tenant_job(tenant: &str, qname: &str, submitted: Timestamp) -> NewJob {
    NewJob { tenant: tenant.to_string(), ..new_job(qname, &alice(), submitted) }
}

async fn put(s: &Subject, tenant: &str, qname: &str, submitted: Timestamp) -> JobId {
    let job = tenant_job(tenant, qname, submitted);
    let id = job.id;
    s.store.enqueue(job).await.expect("enqueue");
    id
}

/// The tenant is stored with the job and read back.
pub async fn tenant_round_trips(s: Subject) {
    let id = put(&s, "team-a", "build", at(0)).await;
    assert_eq!(get(&s, &id).await.tenant, "team-a");
    let id = put(&s, "", "build", at(1)).await;
    assert_eq!(get(&s, &id).await.tenant, "", "the single tenant without a name");
}

/// The same qname in two tenants is two queues: both heads run at once, neither waits.
pub async fn same_qname_in_two_tenants_runs_in_parallel(s: Subject) {
    let a1 = put(&s, "a", "deploy", at(0)).await;
    let a2 = put(&s, "a", "deploy", at(1)).await;
    let b1 = put(&s, "b", "deploy", at(2)).await;
    let got: HashSet<JobId> = claim(&s, &node_a(), 100, at(3)).await.iter().map(|j| j.id).collect();
    assert_eq!(got, HashSet::from([a1, b1]), "one head per (tenant, qname)");
    // A's queue stays serial: a2 only after a1 ended, even from another node.
    assert!(claim(&s, &node_b(), 100, at(4)).await.is_empty(), "a2 must wait for a1");
    assert!(finish(&s, &a1, &node_a(), JobStatus::Success, at(5)).await);
    let next = claim(&s, &node_b(), 100, at(6)).await;
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a2]);
    assert_eq!(get(&s, &b1).await.status, JobStatus::Running, "B's job was never held by A's queue");
}

/// With one slot at a time, tenant B's single job starts after at most one of tenant A's
/// heads, however many A has queued, and then A and B alternate.
pub async fn claim_shares_slots_round_robin_between_tenants(s: Subject) {
    let mut a = Vec::new();
    for i in 0..6 {
        a.push(put(&s, "a", &format!("q{i}"), at(i)).await);
    }
    let b = put(&s, "b", "q0", at(100)).await;
    let b2 = put(&s, "b", "q1", at(101)).await;
    let mut order = Vec::new();
    for step in 0..8 {
        let got = claim(&s, &node_a(), 1, at(200 + step * 10)).await;
        assert_eq!(got.len(), 1, "one slot, one job (step {step})");
        order.push(got[0].id);
        assert!(finish(&s, &got[0].id, &node_a(), JobStatus::Success, at(205 + step * 10)).await);
    }
    let pos = |id: JobId| order.iter().position(|x| *x == id).expect("claimed");
    assert!(pos(b) <= 1, "B's first job started after at most one of A's heads: {order:?}");
    assert!(pos(b2) <= 3, "B's second job also got its turn: {order:?}");
    let a_order: Vec<_> = order.iter().filter(|id| a.contains(id)).copied().collect();
    assert_eq!(a_order, a[..6], "A's heads oldest first");
}

/// `set_tenant_max_running` caps each tenant's active jobs; other tenants are unaffected.
pub async fn tenant_max_running_caps_each_tenant(s: Subject) {
    s.store.set_tenant_max_running(1);
    let a0 = put(&s, "a", "q0", at(0)).await;
    let a1 = put(&s, "a", "q1", at(1)).await;
    let a2 = put(&s, "a", "q2", at(2)).await;
    let b0 = put(&s, "b", "q0", at(3)).await;
    let got: HashSet<JobId> = claim(&s, &node_a(), 100, at(10)).await.iter().map(|j| j.id).collect();
    assert_eq!(got, HashSet::from([a0, b0]), "one job per tenant");
    assert!(claim(&s, &node_b(), 100, at(11)).await.is_empty(), "the cap holds for other nodes too");
    assert!(finish(&s, &a0, &node_a(), JobStatus::Success, at(12)).await);
    let got: Vec<JobId> = claim(&s, &node_b(), 100, at(13)).await.iter().map(|j| j.id).collect();
    assert_eq!(got, vec![a1]);
    s.store.set_tenant_max_running(0);
    let got: Vec<JobId> = claim(&s, &node_b(), 100, at(14)).await.iter().map(|j| j.id).collect();
    assert_eq!(got, vec![a2], "no cap: the rest runs");
}

/// `count_queued` counts one tenant's `queued` jobs only.
pub async fn count_queued_counts_one_tenant(s: Subject) {
    put(&s, "a", "q0", at(0)).await;
    put(&s, "a", "q0", at(1)).await;
    put(&s, "b", "q0", at(2)).await;
    assert_eq!(s.store.count_queued("a").await.expect("count"), 2);
    assert_eq!(s.store.count_queued("b").await.expect("count"), 1);
    assert_eq!(s.store.count_queued("c").await.expect("count"), 0);
    claim(&s, &node_a(), 100, at(3)).await;
    assert_eq!(s.store.count_queued("a").await.expect("count"), 1, "the running head no longer counts");
}

/// Enqueues `n` jobs of `tenant` at once, each on its own qname, alternating over `stores`;
/// returns (accepted, refused with [`gostint_core::StoreError::QueueQuota`]). Any other
/// failure fails the check.
pub async fn enqueue_burst(stores: &[Arc<dyn JobStore>], tenant: &str, n: usize, limit: u64) -> (usize, usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = stores[i % stores.len()].clone();
        let job = tenant_job(tenant, &format!("burst-{i}"), at(i as i64));
        tasks.push(tokio::spawn(async move { store.enqueue(job).await }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("enqueue task") {
            Ok(()) => accepted += 1,
            Err(StoreError::QueueQuota { tenant: t, queued, limit: l }) => {
                assert_eq!((t.as_str(), queued, l), (tenant, limit, limit), "the refusal names the tenant at its cap");
                refused += 1;
            }
            Err(e) => panic!("enqueue failed otherwise: {e}"),
        }
    }
    (accepted, refused)
}

/// `set_tenant_max_queued` is strict: 20 simultaneous enqueues of one tenant with a cap of 5
/// queue exactly 5, the rest get `QueueQuota`; other tenants are unaffected; a claimed job
/// no longer counts; `0` lifts the cap.
pub async fn tenant_max_queued_is_strict_under_concurrent_enqueues(s: Subject) {
    s.store.set_tenant_max_queued(5);
    let stores = [s.store.clone()];
    assert_eq!(enqueue_burst(&stores, "a", 20, 5).await, (5, 15));
    assert_eq!(s.store.count_queued("a").await.expect("count"), 5);
    // One of A's jobs starts: one more may queue, and no more.
    let got = claim(&s, &node_a(), 1, at(100)).await;
    assert_eq!(got.len(), 1);
    put(&s, "a", "after-claim", at(101)).await;
    let refused = s.store.enqueue(tenant_job("a", "over", at(102))).await;
    assert!(matches!(refused, Err(StoreError::QueueQuota { .. })), "{refused:?}");
    assert_eq!(enqueue_burst(&stores, "b", 3, 5).await, (3, 0), "another tenant has its own cap");
    s.store.set_tenant_max_queued(0);
    put(&s, "a", "uncapped", at(103)).await;
    assert_eq!(s.store.count_queued("a").await.expect("count"), 6);
}
