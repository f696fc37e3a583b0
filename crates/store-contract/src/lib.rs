//! The behavioural suite every [`JobStore`] must pass (docs/design.md §2.6–2.9, §5.1, §5.2, §5.6,
//! §5.7): queue semantics, the job life cycle, visibility, listing and housekeeping.
//!
//! It is a normal library used as a dev-dependency by each store crate, and it knows no
//! backend: a store hands the suite a [`Subject`] (a fresh, empty store, and whether it is
//! shared by several processes), and the suite only calls the trait. Run it either way:
//!
//! ```ignore
//! // one #[tokio::test] per check (needs tokio as a dev-dependency of the caller):
//! gostint_store_contract::store_contract_tests!(crate::fresh_subject);
//! // or everything in one test:
//! gostint_store_contract::run_all(fresh_subject).await;
//! ```
//!
//! Start reading at [`checks`]; each check is a `pub async fn` named as a sentence. Stores
//! shared by several processes also run [`cross`] with two handles on one database.
#![warn(missing_docs)]

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

pub mod cross;
mod tenants;
use gostint_core::{
    DeleteOutcome, JobDefinition, JobId, JobRecord, JobStatus, JobStore, KillOutcome, NewJob, NodeId, Outcome, Owner,
    Timestamp, Visibility,
};
pub use tenants::*;

/// The output a stale-node sweep writes (docs/design.md §5.6).
pub fn node_lost_message(node: &NodeId) -> String {
    node.lost_message()
}

/// A store under test: a fresh, empty [`JobStore`] and what the suite should expect of it.
pub struct Subject {
    /// The store, as the API and the worker see it.
    pub store: Arc<dyn JobStore>,
    delivers_events: bool,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Subject {
    /// Wraps a fresh, empty store of a single-process backend, whose
    /// [`JobStore::listen`] has nothing to deliver and returns at once (SQLite).
    pub fn new(store: Arc<dyn JobStore>) -> Self {
        Self { store, delivers_events: false, _keep: None }
    }

    /// Marks a backend shared by several processes (PostgreSQL): its
    /// [`JobStore::listen`] keeps running (see [`cross`] for what it must deliver).
    pub fn delivering_events(mut self) -> Self {
        self.delivers_events = true;
        self
    }

    /// Keeps `guard` (a temporary directory, a database handle) alive as long as the subject.
    pub fn keep_alive(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }

    async fn lose_node(&self, node: &NodeId, now: Timestamp) -> u64 {
        self.store.mark_node_lost(node, now).await.expect("mark_node_lost")
    }
}

/// What a subject factory may return: a [`Subject`], or `Option<Subject>` where `None`
/// means the backend is not available here (the factory prints why) and the check is
/// skipped.
pub trait MaybeSubject {
    /// The subject, if there is one.
    fn into_subject(self) -> Option<Subject>;
}

impl MaybeSubject for Subject {
    fn into_subject(self) -> Option<Subject> {
        Some(self)
    }
}

impl MaybeSubject for Option<Subject> {
    fn into_subject(self) -> Option<Subject> {
        self
    }
}

// ---------------------------------------------------------------- the list of checks

/// Calls `$crate::$callback!([args] name, name, …)` with every check, so that [`checks`] and
/// [`store_contract_tests!`] cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_every_check {
    ($callback:ident $(, $arg:tt)*) => {
        $crate::$callback! {
            [$($arg)*]
            enqueue_then_get_round_trips_every_field,
            get_of_a_missing_job_is_none,
            enqueue_refuses_a_duplicate_id,
            concurrent_enqueues_all_commit_and_a_duplicate_fails_only_itself,
            claim_takes_the_head_of_every_free_queue,
            claim_is_fifo_per_queue_by_submitted_then_insertion,
            claim_takes_the_oldest_queue_heads_first_and_respects_max,
            busy_queue_does_not_block_other_queues,
            a_free_head_behind_a_long_busy_queue_is_found,
            stopping_job_holds_its_queue,
            unknown_job_does_not_hold_its_queue,
            concurrent_claims_never_put_two_active_jobs_in_one_queue,
            mark_node_lost_ends_every_active_job_of_that_node_only,
            finish_records_the_outcome_and_blanks_secrets,
            finish_refuses_other_nodes_missing_and_final_jobs,
            finish_follows_the_state_machine,
            finish_frees_the_queue,
            finish_by_the_owning_node_replaces_unknown,
            request_kill_fails_a_queued_job_at_once,
            request_kill_flags_an_active_job,
            request_kill_on_a_final_job_only_stores_the_flag,
            request_kill_on_an_invisible_job_is_none,
            mark_stopping_moves_only_running_jobs,
            kills_pending_lists_only_this_nodes_flagged_running_jobs,
            delete_removes_queued_and_final_jobs,
            delete_refuses_active_jobs,
            delete_of_another_owners_job_is_not_found,
            delete_of_a_queued_job_wakes_its_followers,
            list_is_newest_first_with_later_insertion_first_on_ties,
            list_pages_with_skip_and_limit,
            list_shows_and_counts_only_visible_jobs,
            count_by_status_counts_every_status,
            count_active_on_counts_running_and_stopping_of_one_node,
            purge_removes_only_final_jobs_ended_before_the_cutoff,
            set_container_records_image_and_container,
            clear_wrap_secret_id_blanks_only_the_token,
            text_with_nul_characters_is_stored,
            reap_stale_nodes_ends_every_active_job_of_each_stale_node_and_frees_its_queues,
            reap_stale_nodes_spares_fresh_nodes_and_never_the_caller,
            heartbeat_keeps_a_node_from_being_reaped,
            deregister_removes_the_node_row_only,
            orphan_owners_lists_owners_of_active_jobs_without_a_node_row,
            listen_follows_the_kind_of_store,
            tenant_round_trips,
            same_qname_in_two_tenants_runs_in_parallel,
            claim_shares_slots_round_robin_between_tenants,
            tenant_max_running_caps_each_tenant,
            count_queued_counts_one_tenant,
            tenant_max_queued_is_strict_under_concurrent_enqueues,
            active_ids_on_lists_this_nodes_running_and_stopping_jobs,
            image_gc_sees_only_recorded_images_per_engine_unused_since_the_cutoff,
            append_output_adds_to_a_running_job_of_its_node_only,
            list_items_carry_a_bounded_tail_of_output_and_stderr,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __checks_vec {
    ([] $($check:ident),* $(,)?) => {
        vec![$((
            stringify!($check),
            (|s| ::std::boxed::Box::pin($crate::$check(s))) as $crate::Check,
        )),*]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __one_test_per_check {
    ([$make:path] $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                if let Some(subject) = $crate::MaybeSubject::into_subject($make().await) {
                    $crate::$check(subject).await;
                }
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per check, each given a fresh subject by `$make`, an
/// `async fn() -> Subject` (or `-> Option<Subject>`, `None` skipping the check) path. The calling crate needs `tokio` (macros, multi-thread
/// runtime) among its dev-dependencies.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::__with_every_check!(__one_test_per_check, $make);
    };
}

/// What one check returns when boxed.
pub type CheckFuture = BoxFuture<'static, ()>;

/// One check, boxed: it panics when the store breaks the contract.
pub type Check = fn(Subject) -> CheckFuture;

/// Every check by name.
pub fn checks() -> Vec<(&'static str, Check)> {
    __with_every_check!(__checks_vec)
}

/// Runs every check, each on a fresh subject from `make`, and panics naming every check that failed.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future,
    Fut::Output: MaybeSubject,
{
    let mut failed = Vec::new();
    for (name, check) in checks() {
        let Some(subject) = make().await.into_subject() else {
            return;
        };
        // A task per check, so one failure is reported by name and the rest still run.
        if tokio::spawn(check(subject)).await.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "store contract checks failed: {failed:?}");
}

// ---------------------------------------------------------------- fixtures

/// A fixed instant so that expectations are exact.
const T0: i64 = 1_700_000_000_000;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

fn alice() -> Owner {
    Owner::new("entity-alice")
}

fn bob() -> Owner {
    Owner::new("accessor:bob")
}

fn node_a() -> NodeId {
    NodeId::new("7d9c8f4e-0000-4000-8000-00000000000a")
}

fn node_b() -> NodeId {
    NodeId::new("7d9c8f4e-0000-4000-8000-00000000000b")
}

/// A definition with every field set, including the ones `finish` must blank.
fn full_definition(qname: &str) -> JobDefinition {
    JobDefinition {
        qname: qname.to_string(),
        container_image: "registry.local:5000/team/job:1.2".into(),
        image_pull_policy: "Always".into(),
        content: "targz,H4sIAAAAAAAAA+3OMQ6CQBCF4T3KHmFhd3Y9j4WJdjYGC49vqKQ==".into(),
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        run: vec!["echo \"hello\" && cat /secrets.yml".into()],
        working_directory: "/tmp/work".into(),
        env_vars: vec!["A=1".into(), "GREETING=héllo wörld ✓".into()],
        secret_refs: vec!["PASS@kv/data/app.password".into()],
        secret_file_type: "json".into(),
        cont_on_warnings: true,
        tty: true,
        resources: gostint_core::Resources {
            pids: Some(64),
            memory: Some(gostint_core::ByteSize(64 << 20)),
            cpus: Some(0.5),
        },
    }
}

fn new_job(qname: &str, owner: &Owner, submitted: Timestamp) -> NewJob {
    let id = JobId::new(submitted.unix_seconds());
    NewJob {
        id,
        qname: qname.to_string(),
        owner: owner.clone(),
        submitted,
        definition: full_definition(qname),
        wrap_secret_id: format!("s.wrap-{id}"),
        payload: Some(format!("vault:v1:ciphertext-of-{id}")),
        tenant: String::new(),
        wrap_expires: submitted.plus_seconds(600),
    }
}

async fn enqueue(s: &Subject, qname: &str, owner: &Owner, submitted: Timestamp) -> JobId {
    let job = new_job(qname, owner, submitted);
    let id = job.id;
    s.store.enqueue(job).await.expect("enqueue");
    id
}

async fn get(s: &Subject, id: &JobId) -> JobRecord {
    s.store.get(id).await.expect("get").unwrap_or_else(|| panic!("job {id} should exist"))
}

async fn status(s: &Subject, id: &JobId) -> JobStatus {
    get(s, id).await.status
}

async fn claim(s: &Subject, node: &NodeId, max: usize, now: Timestamp) -> Vec<JobRecord> {
    s.store.claim(node, max, now).await.expect("claim")
}

fn ids(jobs: &[JobRecord]) -> HashSet<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

/// Claims everything claimable and expects exactly `expected` (any order).
async fn claim_expecting(s: &Subject, node: &NodeId, now: Timestamp, expected: &[JobId]) -> Vec<JobRecord> {
    let got = claim(s, node, 1000, now).await;
    assert_eq!(ids(&got), expected.iter().copied().collect::<HashSet<_>>(), "claimed set");
    assert_eq!(got.len(), expected.len(), "claim returned a job twice: {got:?}");
    got
}

async fn finish(s: &Subject, id: &JobId, node: &NodeId, status: JobStatus, ended: Timestamp) -> bool {
    let outcome = Outcome { status, output: format!("{status} output"), stderr: String::new(), return_code: 0 };
    s.store.finish(id, node, outcome, ended).await.expect("finish")
}

/// Enqueues one job in its own queue and claims it on `node`.
async fn running_job(s: &Subject, qname: &str, node: &NodeId, submitted: Timestamp) -> JobId {
    let id = enqueue(s, qname, &alice(), submitted).await;
    let got = claim(s, node, 1000, submitted).await;
    assert!(got.iter().any(|j| j.id == id), "job {id} should be claimable");
    id
}

async fn kill(s: &Subject, id: &JobId, who: Visibility<'_>, now: Timestamp) -> Option<KillOutcome> {
    s.store.request_kill(id, who, now).await.expect("request_kill")
}

fn count(map: &HashMap<JobStatus, u64>, st: JobStatus) -> u64 {
    map.get(&st).copied().unwrap_or(0)
}

// ---------------------------------------------------------------- enqueue / get

/// Every field of a new job comes back from `get` as stored, with the server fields unset.
pub async fn enqueue_then_get_round_trips_every_field(s: Subject) {
    let job = new_job("build", &alice(), at(14));
    s.store.enqueue(job.clone()).await.expect("enqueue");

    let rec = get(&s, &job.id).await;
    assert_eq!(rec.id, job.id);
    assert_eq!(rec.status, JobStatus::Queued);
    assert_eq!(rec.node_uuid, "");
    assert_eq!(rec.qname, "build");
    assert_eq!(rec.owner, alice());
    assert_eq!(rec.container_image, job.definition.container_image, "image as submitted");
    assert_eq!(rec.submitted, at(14));
    assert_eq!(rec.started, Timestamp::ZERO);
    assert_eq!(rec.ended, Timestamp::ZERO);
    assert_eq!(rec.output, "");
    assert_eq!(rec.stderr, "");
    assert_eq!(rec.return_code, 0);
    assert!(rec.tty, "tty as submitted");
    assert_eq!(rec.container_id, "");
    assert!(!rec.kill_requested);
    assert_eq!(rec.definition, job.definition);
    assert_eq!(rec.wrap_secret_id, job.wrap_secret_id);
    assert_eq!(rec.payload, job.payload);
    assert_eq!(rec.wrap_expires, job.wrap_expires, "the wrapping token's expiry as submitted");

    // A sparse job: no payload, default definition, the empty queue name.
    let sparse = NewJob {
        id: JobId::new(0),
        qname: String::new(),
        owner: bob(),
        submitted: at(0),
        definition: JobDefinition::default(),
        wrap_secret_id: "w".into(),
        payload: None,
        tenant: String::new(),
        wrap_expires: Timestamp::ZERO,
    };
    s.store.enqueue(sparse.clone()).await.expect("enqueue sparse");
    let rec = get(&s, &sparse.id).await;
    assert_eq!(rec.wrap_expires, Timestamp::ZERO, "an unknown expiry stays unknown");
    assert_eq!(rec.qname, "");
    assert_eq!(rec.owner, bob());
    assert_eq!(rec.definition, JobDefinition::default());
    assert!(!rec.tty);
    assert_eq!(rec.payload, None);
}

/// `get` of an id never stored is `None`, not an error.
pub async fn get_of_a_missing_job_is_none(s: Subject) {
    assert!(s.store.get(&JobId::new(1)).await.expect("get").is_none());
}

/// Enqueueing an id twice fails and leaves the first job as it was.
pub async fn enqueue_refuses_a_duplicate_id(s: Subject) {
    let job = new_job("q", &alice(), at(0));
    s.store.enqueue(job.clone()).await.expect("enqueue");
    let mut again = new_job("other", &bob(), at(5));
    again.id = job.id;
    assert!(s.store.enqueue(again).await.is_err(), "duplicate id accepted");
    let rec = get(&s, &job.id).await;
    assert_eq!((rec.qname.as_str(), rec.owner), ("q", alice()));
}

/// Concurrent enqueues (a burst of POSTs; stores may commit them together) each get their own
/// answer: every fresh id is stored with its own fields, every repeated id refused.
pub async fn concurrent_enqueues_all_commit_and_a_duplicate_fails_only_itself(s: Subject) {
    let jobs: Vec<NewJob> = (0..200).map(|i| new_job(&format!("burst-{}", i % 7), &alice(), at(i))).collect();
    let mut tasks = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let store = s.store.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move { (i, store.enqueue(job).await.is_ok()) }));
        if i % 10 == 0 {
            // The same id again, in the same burst, under another queue and owner.
            let store = s.store.clone();
            let mut again = new_job("burst-dup", &bob(), at(i as i64));
            again.id = jobs[i].id;
            tasks.push(tokio::spawn(async move { (usize::MAX, store.enqueue(again).await.is_ok()) }));
        }
    }
    let mut stored = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("enqueue task") {
            (_, true) => stored += 1,
            (_, false) => refused += 1,
        }
    }
    assert_eq!((stored, refused), (200, 20), "each id stored once, each repeat refused");
    for job in &jobs {
        let rec = get(&s, &job.id).await;
        assert_eq!(rec.submitted, job.submitted, "{}", job.id);
        assert!(rec.qname == job.qname || rec.qname == "burst-dup", "{}: {}", job.id, rec.qname);
    }
    let (_, total) = s.store.list(Visibility::All, 0, 1).await.expect("list");
    assert_eq!(total, 200);
}

// ---------------------------------------------------------------- claim

/// One claim takes the head of every queue without an active job, and at most one per queue;
/// the claimed rows carry everything the worker needs.
pub async fn claim_takes_the_head_of_every_free_queue(s: Subject) {
    let a1 = enqueue(&s, "a", &alice(), at(1)).await;
    let _a2 = enqueue(&s, "a", &alice(), at(2)).await;
    let _a3 = enqueue(&s, "a", &alice(), at(3)).await;
    let b1 = enqueue(&s, "b", &bob(), at(4)).await;
    let _b2 = enqueue(&s, "b", &bob(), at(5)).await;
    let c1 = enqueue(&s, "c", &alice(), at(6)).await;

    let got = claim_expecting(&s, &node_a(), at(100), &[a1, b1, c1]).await;
    for job in &got {
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.node_uuid, node_a().as_str());
        assert_eq!(job.started, at(100));
        assert_eq!(job.definition, full_definition(&job.qname), "definition handed to the worker");
        assert!(job.payload.is_some(), "payload handed to the worker");
        assert!(!job.wrap_secret_id.is_empty(), "wrap token handed to the worker");
        let stored = get(&s, &job.id).await;
        assert_eq!(
            (stored.status, stored.node_uuid.as_str(), stored.started),
            (JobStatus::Running, node_a().as_str(), at(100))
        );
    }

    // Every queue is busy now: nothing more for anyone.
    assert!(claim(&s, &node_b(), 1000, at(101)).await.is_empty());
}

/// A queue runs in `submitted` order, ties in insertion order, whatever order the jobs arrived in.
pub async fn claim_is_fifo_per_queue_by_submitted_then_insertion(s: Subject) {
    let late = enqueue(&s, "q", &alice(), at(50)).await;
    let early = enqueue(&s, "q", &alice(), at(10)).await; // inserted after `late`, but older
    let mut tied = Vec::new();
    for _ in 0..6 {
        tied.push(enqueue(&s, "q", &alice(), at(20)).await); // equal timestamps
    }
    let mut expected = vec![early];
    expected.extend(&tied);
    expected.push(late);

    let mut order = Vec::new();
    for step in 0..expected.len() as i64 {
        let got = claim(&s, &node_a(), 1000, at(100 + step)).await;
        assert_eq!(got.len(), 1, "one job per queue at a time, got {got:?}");
        assert!(claim(&s, &node_a(), 1000, at(100 + step)).await.is_empty(), "queue should be busy");
        order.push(got[0].id);
        assert!(finish(&s, &got[0].id, &node_a(), JobStatus::Success, at(100 + step)).await);
    }
    assert_eq!(order, expected);
    assert!(claim(&s, &node_a(), 1000, at(200)).await.is_empty());
}

/// With `max`, the oldest queue heads (by `submitted`, then insertion) are taken first;
/// `max` = 0 claims nothing.
pub async fn claim_takes_the_oldest_queue_heads_first_and_respects_max(s: Subject) {
    let a = enqueue(&s, "a", &alice(), at(30)).await;
    let b = enqueue(&s, "b", &alice(), at(10)).await;
    let c = enqueue(&s, "c", &alice(), at(20)).await;
    let d = enqueue(&s, "d", &alice(), at(10)).await; // ties with b, inserted later

    assert!(claim(&s, &node_a(), 0, at(100)).await.is_empty(), "max 0");
    assert_eq!(status(&s, &b).await, JobStatus::Queued);

    let first = claim(&s, &node_a(), 1, at(100)).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![b]);
    let next = claim(&s, &node_a(), 2, at(101)).await;
    assert_eq!(ids(&next), HashSet::from([d, c]));
    claim_expecting(&s, &node_a(), at(102), &[a]).await;
}

/// A queue with a running job yields nothing while every other queue still yields its head
/// (the original stalled every queue behind the first busy one).
pub async fn busy_queue_does_not_block_other_queues(s: Subject) {
    let a1 = enqueue(&s, "a", &alice(), at(1)).await;
    let a2 = enqueue(&s, "a", &alice(), at(2)).await;
    let b1 = enqueue(&s, "b", &alice(), at(3)).await;
    let b2 = enqueue(&s, "b", &alice(), at(4)).await;
    let c1 = enqueue(&s, "c", &alice(), at(5)).await;

    let first = claim(&s, &node_a(), 1, at(10)).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a1]);
    // `a` is busy and sorts first; `b` and `c` must still be served.
    claim_expecting(&s, &node_b(), at(11), &[b1, c1]).await;
    claim_expecting(&s, &node_b(), at(12), &[]).await;

    assert!(finish(&s, &b1, &node_b(), JobStatus::Success, at(13)).await);
    claim_expecting(&s, &node_b(), at(14), &[b2]).await;

    let d1 = enqueue(&s, "d", &alice(), at(15)).await;
    claim_expecting(&s, &node_a(), at(16), &[d1]).await;
    assert_eq!(status(&s, &a2).await, JobStatus::Queued);

    assert!(finish(&s, &a1, &node_a(), JobStatus::Success, at(17)).await);
    claim_expecting(&s, &node_a(), at(18), &[a2]).await;
}

/// A free queue's head is found even behind hundreds of older jobs of a busy queue (a store
/// may look at the oldest queued jobs first, but must not stop there).
pub async fn a_free_head_behind_a_long_busy_queue_is_found(s: Subject) {
    let busy = running_job(&s, "busy", &node_a(), at(1)).await;
    for i in 0..300 {
        enqueue(&s, "busy", &alice(), at(2 + i)).await;
    }
    let late = enqueue(&s, "late", &alice(), at(1000)).await;
    claim_expecting(&s, &node_b(), at(1001), &[late]).await;
    assert!(finish(&s, &busy, &node_a(), JobStatus::Success, at(1002)).await);
    let next = claim(&s, &node_b(), 5, at(1003)).await;
    assert_eq!(next.len(), 1, "one job of the freed queue, its head");
}

/// A `stopping` job still holds its queue; the next job starts only once it has ended.
pub async fn stopping_job_holds_its_queue(s: Subject) {
    let q1 = running_job(&s, "q", &node_a(), at(1)).await;
    let q2 = enqueue(&s, "q", &alice(), at(2)).await;
    assert!(s.store.mark_stopping(&q1).await.expect("mark_stopping"));
    let other = enqueue(&s, "other", &alice(), at(3)).await;

    claim_expecting(&s, &node_b(), at(10), &[other]).await;
    assert_eq!(status(&s, &q2).await, JobStatus::Queued);

    assert!(finish(&s, &q1, &node_a(), JobStatus::Failed, at(20)).await);
    claim_expecting(&s, &node_b(), at(21), &[q2]).await;
}

/// An `unknown` job (its node vanished) does not hold its queue.
pub async fn unknown_job_does_not_hold_its_queue(s: Subject) {
    let q1 = running_job(&s, "q", &node_a(), at(1)).await;
    let q2 = enqueue(&s, "q", &alice(), at(2)).await;
    assert!(claim(&s, &node_b(), 1000, at(5)).await.is_empty());

    assert_eq!(s.lose_node(&node_a(), at(10)).await, 1);
    assert_eq!(status(&s, &q1).await, JobStatus::Unknown);
    claim_expecting(&s, &node_b(), at(11), &[q2]).await;
}

/// Many tasks claiming at once never hold two active jobs of one queue, keep each queue in
/// FIFO order, and claim every job exactly once.
pub async fn concurrent_claims_never_put_two_active_jobs_in_one_queue(s: Subject) {
    const QUEUES: usize = 5;
    const PER_QUEUE: usize = 10;
    const TASKS: usize = 8;
    let mut expected: HashMap<String, Vec<JobId>> = HashMap::new();
    for i in 0..PER_QUEUE {
        for q in 0..QUEUES {
            let qname = format!("q{q}");
            // Several jobs per timestamp, so ties are exercised under contention too.
            let id = enqueue(&s, &qname, &alice(), at((i / 3) as i64)).await;
            expected.entry(qname).or_default().push(id);
        }
    }

    #[derive(Default)]
    struct Seen {
        active: HashMap<String, JobId>,
        order: HashMap<String, Vec<JobId>>,
        claims: HashMap<JobId, usize>,
        violations: Vec<String>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let total = QUEUES * PER_QUEUE;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = s.store.clone();
        let seen = seen.clone();
        let node = NodeId::new(format!("node-{t}"));
        tasks.push(tokio::spawn(async move {
            loop {
                if seen.lock().expect("lock").claims.len() >= total {
                    return;
                }
                let got = store.claim(&node, 3, at(1000)).await.expect("claim");
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                {
                    let mut seen = seen.lock().expect("lock");
                    for job in &got {
                        *seen.claims.entry(job.id).or_default() += 1;
                        seen.order.entry(job.qname.clone()).or_default().push(job.id);
                        if let Some(other) = seen.active.insert(job.qname.clone(), job.id) {
                            let msg = format!("queue {} had {other} active when {} was claimed", job.qname, job.id);
                            seen.violations.push(msg);
                        }
                    }
                }
                tokio::task::yield_now().await;
                for job in got {
                    // Forget it before the store does, so the check never reports a false overlap.
                    seen.lock().expect("lock").active.remove(&job.qname);
                    let outcome = Outcome::message(JobStatus::Success, "");
                    assert!(store.finish(&job.id, &node, outcome, at(2000)).await.expect("finish"));
                }
            }
        }));
    }
    let all = futures::future::join_all(tasks);
    let results = tokio::time::timeout(Duration::from_secs(60), all).await.expect("claim loop took over 60 s");
    for r in results {
        r.expect("claim task panicked");
    }

    let seen = seen.lock().expect("lock");
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert_eq!(seen.claims.len(), total, "every job claimed");
    assert!(seen.claims.values().all(|&n| n == 1), "a job was claimed twice: {:?}", seen.claims);
    for (qname, order) in &expected {
        assert_eq!(seen.order.get(qname), Some(order), "FIFO order of {qname}");
    }
}

/// The stale-node hook (docs/design.md §5.6) ends **all** of that node's active jobs at once, with
/// `ended` set, and touches nothing else (the original marked one job per pass).
pub async fn mark_node_lost_ends_every_active_job_of_that_node_only(s: Subject) {
    let r1 = running_job(&s, "r1", &node_a(), at(1)).await;
    let r2 = running_job(&s, "r2", &node_a(), at(2)).await;
    let st = running_job(&s, "st", &node_a(), at(3)).await;
    assert!(s.store.mark_stopping(&st).await.expect("mark_stopping"));
    let done = running_job(&s, "done", &node_a(), at(4)).await;
    assert!(finish(&s, &done, &node_a(), JobStatus::Success, at(5)).await);
    let elsewhere = running_job(&s, "b", &node_b(), at(6)).await;
    let queued = enqueue(&s, "r1", &alice(), at(7)).await;

    assert_eq!(s.lose_node(&node_a(), at(100)).await, 3);
    for id in [r1, r2, st] {
        let rec = get(&s, &id).await;
        assert_eq!(rec.status, JobStatus::Unknown, "{id}");
        assert_eq!(rec.ended, at(100));
        assert_eq!(rec.output, node_lost_message(&node_a()));
    }
    assert_eq!(status(&s, &done).await, JobStatus::Success);
    assert_eq!(status(&s, &elsewhere).await, JobStatus::Running);
    assert_eq!(status(&s, &queued).await, JobStatus::Queued);
    assert_eq!(s.lose_node(&node_a(), at(101)).await, 0, "nothing left to mark");
}

// ---------------------------------------------------------------- finish

/// `finish` writes the outcome and `ended`, and blanks `payload`, `wrap_secret_id` and the
/// definition's `content` and `env_vars` (docs/defects.md item 37); the rest stays.
pub async fn finish_records_the_outcome_and_blanks_secrets(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    s.store.set_container(&id, "docker.io/library/busybox:latest", "c0ffee").await.expect("set_container");
    let outcome = Outcome {
        status: JobStatus::Failed,
        output: "out ✓\nline 2".into(),
        stderr: "err \u{1b}[31mred\u{1b}[0m".into(),
        return_code: 3,
    };
    assert!(s.store.finish(&id, &node_a(), outcome.clone(), at(99)).await.expect("finish"));

    let rec = get(&s, &id).await;
    assert_eq!(rec.status, JobStatus::Failed);
    assert_eq!(
        (rec.output.as_str(), rec.stderr.as_str(), rec.return_code),
        ("out ✓\nline 2", outcome.stderr.as_str(), 3)
    );
    assert_eq!(rec.ended, at(99));
    assert_eq!(rec.started, at(1), "started kept");
    assert_eq!(rec.node_uuid, node_a().as_str(), "node kept");
    assert_eq!(
        (rec.container_image.as_str(), rec.container_id.as_str()),
        ("docker.io/library/busybox:latest", "c0ffee")
    );
    assert_eq!(rec.payload, None, "payload blanked");
    assert_eq!(rec.wrap_secret_id, "", "wrap token blanked");
    assert_eq!(rec.definition.content, "", "content blanked");
    assert!(rec.definition.env_vars.is_empty(), "env_vars blanked");
    let mut rest = full_definition("q");
    rest.content.clear();
    rest.env_vars.clear();
    assert_eq!(rec.definition, rest, "other definition fields kept");
}

/// `finish` is false, and changes nothing, for another node's job, a queued job, a missing
/// job or a job already final.
pub async fn finish_refuses_other_nodes_missing_and_final_jobs(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    assert!(!finish(&s, &id, &node_b(), JobStatus::Success, at(5)).await, "another node's job");
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.ended), (JobStatus::Running, Timestamp::ZERO));
    assert!(rec.payload.is_some());

    let queued = enqueue(&s, "q", &alice(), at(2)).await;
    assert!(!finish(&s, &queued, &node_a(), JobStatus::Success, at(5)).await, "a queued job");
    assert_eq!(status(&s, &queued).await, JobStatus::Queued);
    assert!(!finish(&s, &JobId::new(7), &node_a(), JobStatus::Success, at(5)).await, "a missing job");

    assert!(finish(&s, &id, &node_a(), JobStatus::Success, at(6)).await);
    assert!(!finish(&s, &id, &node_a(), JobStatus::Failed, at(7)).await, "already final");
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.ended, rec.output.as_str()), (JobStatus::Success, at(6), "success output"));
}

/// `finish` only makes the moves [`JobStatus::transition`] allows: a running job may end
/// `success`/`failed`/`notauthorised`, a stopping job only `failed`, never a non-final status.
pub async fn finish_follows_the_state_machine(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    for st in [JobStatus::Queued, JobStatus::Running, JobStatus::Stopping, JobStatus::Unknown] {
        assert!(!finish(&s, &id, &node_a(), st, at(2)).await, "running → {st}");
        assert_eq!(status(&s, &id).await, JobStatus::Running);
    }
    assert!(finish(&s, &id, &node_a(), JobStatus::NotAuthorised, at(3)).await);
    assert_eq!(status(&s, &id).await, JobStatus::NotAuthorised);

    let stopping = running_job(&s, "s", &node_a(), at(4)).await;
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));
    assert!(!finish(&s, &stopping, &node_a(), JobStatus::Success, at(5)).await, "a kill always ends failed");
    assert!(!finish(&s, &stopping, &node_a(), JobStatus::NotAuthorised, at(5)).await);
    assert_eq!(status(&s, &stopping).await, JobStatus::Stopping);
    assert!(finish(&s, &stopping, &node_a(), JobStatus::Failed, at(6)).await);
    assert_eq!(status(&s, &stopping).await, JobStatus::Failed);
}

/// Once a job ends, the next job of its queue can be claimed.
pub async fn finish_frees_the_queue(s: Subject) {
    let first = running_job(&s, "q", &node_a(), at(1)).await;
    let second = enqueue(&s, "q", &alice(), at(2)).await;
    assert!(claim(&s, &node_b(), 1000, at(3)).await.is_empty());
    assert!(finish(&s, &first, &node_a(), JobStatus::Success, at(4)).await);
    claim_expecting(&s, &node_b(), at(5), &[second]).await;
}

/// The owning node, come back, may replace `unknown` with the real outcome; no other node may.
pub async fn finish_by_the_owning_node_replaces_unknown(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    assert_eq!(s.lose_node(&node_a(), at(10)).await, 1);
    assert!(!finish(&s, &id, &node_b(), JobStatus::Success, at(11)).await, "not the owner");
    assert!(finish(&s, &id, &node_a(), JobStatus::Success, at(12)).await);
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.ended, rec.output.as_str()), (JobStatus::Success, at(12), "success output"));
    assert_eq!(rec.payload, None);
    assert!(!finish(&s, &id, &node_a(), JobStatus::Failed, at(13)).await, "final now");
}

// ---------------------------------------------------------------- kill

/// A kill of a queued job fails it at once with `job killed` and `ended`, answers `queued`,
/// blanks its secrets like any end, and frees its place so the next job can run.
pub async fn request_kill_fails_a_queued_job_at_once(s: Subject) {
    let id = enqueue(&s, "q", &alice(), at(1)).await;
    let next = enqueue(&s, "q", &alice(), at(2)).await;

    let got = kill(&s, &id, Visibility::Owner(&alice()), at(50)).await;
    assert_eq!(got, Some(KillOutcome { previous: JobStatus::Queued, container_id: String::new() }));
    let rec = get(&s, &id).await;
    assert_eq!(rec.status, JobStatus::Failed);
    assert_eq!(rec.output, "job killed");
    assert_eq!(rec.ended, at(50));
    assert!(rec.kill_requested);
    assert_eq!((rec.payload, rec.wrap_secret_id.as_str()), (None, ""), "secrets blanked");
    assert_eq!(rec.definition.content, "");
    assert!(rec.definition.env_vars.is_empty());

    claim_expecting(&s, &node_a(), at(60), &[next]).await;
}

/// A kill of a running or stopping job only sets the flag and answers the status before the
/// call (so `running`, not `stopping`) and the container.
pub async fn request_kill_flags_an_active_job(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    s.store.set_container(&id, "img", "c1").await.expect("set_container");

    let got = kill(&s, &id, Visibility::Owner(&alice()), at(5)).await;
    assert_eq!(got, Some(KillOutcome { previous: JobStatus::Running, container_id: "c1".into() }));
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.kill_requested, rec.ended), (JobStatus::Running, true, Timestamp::ZERO));

    assert!(s.store.mark_stopping(&id).await.expect("mark_stopping"));
    let got = kill(&s, &id, Visibility::All, at(6)).await;
    assert_eq!(got.map(|k| k.previous), Some(JobStatus::Stopping));
    assert_eq!(status(&s, &id).await, JobStatus::Stopping);
}

/// A kill of a final job stores the flag and changes nothing else.
pub async fn request_kill_on_a_final_job_only_stores_the_flag(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    assert!(finish(&s, &id, &node_a(), JobStatus::Success, at(2)).await);
    let got = kill(&s, &id, Visibility::Owner(&alice()), at(3)).await;
    assert_eq!(got.map(|k| k.previous), Some(JobStatus::Success));
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.kill_requested, rec.ended), (JobStatus::Success, true, at(2)));
    assert_eq!(rec.output, "success output");
}

/// A kill of another owner's job or of a missing job is `None` and changes nothing; an admin sees every job.
pub async fn request_kill_on_an_invisible_job_is_none(s: Subject) {
    let id = enqueue(&s, "q", &alice(), at(1)).await;
    assert_eq!(kill(&s, &id, Visibility::Owner(&bob()), at(2)).await, None);
    let rec = get(&s, &id).await;
    assert_eq!((rec.status, rec.kill_requested), (JobStatus::Queued, false));
    assert_eq!(kill(&s, &JobId::new(3), Visibility::All, at(2)).await, None);

    let got = kill(&s, &id, Visibility::All, at(4)).await;
    assert_eq!(got.map(|k| k.previous), Some(JobStatus::Queued));
    assert_eq!(status(&s, &id).await, JobStatus::Failed);
}

/// `mark_stopping` moves a running job to `stopping` and nothing else.
pub async fn mark_stopping_moves_only_running_jobs(s: Subject) {
    let busy = running_job(&s, "busy", &node_b(), at(0)).await;
    let queued = enqueue(&s, "busy", &alice(), at(1)).await; // stays queued behind `busy`
    assert!(!s.store.mark_stopping(&queued).await.expect("mark_stopping"));
    assert_eq!(status(&s, &queued).await, JobStatus::Queued);
    assert_eq!(status(&s, &busy).await, JobStatus::Running);

    let id = running_job(&s, "q", &node_a(), at(2)).await;
    assert!(s.store.mark_stopping(&id).await.expect("mark_stopping"));
    assert_eq!(status(&s, &id).await, JobStatus::Stopping);
    assert!(!s.store.mark_stopping(&id).await.expect("mark_stopping"), "already stopping");
    assert!(finish(&s, &id, &node_a(), JobStatus::Failed, at(3)).await);
    assert!(!s.store.mark_stopping(&id).await.expect("mark_stopping"), "final");
    assert_eq!(status(&s, &id).await, JobStatus::Failed);
    assert!(!s.store.mark_stopping(&JobId::new(9)).await.expect("mark_stopping"), "missing");
}

/// `kills_pending` lists the node's own `running` jobs with the flag, and no others.
pub async fn kills_pending_lists_only_this_nodes_flagged_running_jobs(s: Subject) {
    let flagged = running_job(&s, "a", &node_a(), at(1)).await;
    let _unflagged = running_job(&s, "b", &node_a(), at(2)).await;
    let stopping = running_job(&s, "c", &node_a(), at(3)).await;
    let other_node = running_job(&s, "d", &node_b(), at(4)).await;
    let ended = running_job(&s, "e", &node_a(), at(5)).await;
    assert!(finish(&s, &ended, &node_a(), JobStatus::Success, at(6)).await);
    for id in [flagged, stopping, other_node, ended] {
        assert!(kill(&s, &id, Visibility::All, at(7)).await.is_some());
    }
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));

    let pending = s.store.kills_pending(&node_a()).await.expect("kills_pending");
    assert_eq!(pending.iter().map(|j| j.id).collect::<Vec<_>>(), vec![flagged]);
    assert!(pending[0].kill_requested);
    let pending_b = s.store.kills_pending(&node_b()).await.expect("kills_pending");
    assert_eq!(pending_b.iter().map(|j| j.id).collect::<Vec<_>>(), vec![other_node]);
}

// ---------------------------------------------------------------- delete

/// Queued and final jobs are deleted (a queued job is thereby cancelled, and the next one
/// becomes the head); a second delete is `NotFound`.
pub async fn delete_removes_queued_and_final_jobs(s: Subject) {
    let head = enqueue(&s, "q", &alice(), at(1)).await;
    let next = enqueue(&s, "q", &alice(), at(2)).await;
    assert_eq!(s.store.delete(&head, Visibility::Owner(&alice())).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(s.store.get(&head).await.expect("get").is_none());
    assert_eq!(s.store.delete(&head, Visibility::All).await.expect("delete"), DeleteOutcome::NotFound);

    claim_expecting(&s, &node_a(), at(3), &[next]).await;
    assert!(finish(&s, &next, &node_a(), JobStatus::Success, at(4)).await);
    assert_eq!(s.store.delete(&next, Visibility::Owner(&alice())).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(s.store.get(&next).await.expect("get").is_none());
}

/// Deleting a queued job delivers [`StoreEvent::JobChanged`](gostint_core::StoreEvent) of
/// it to the sink given to `listen` (within 1 s), so a stream or long-poll following the
/// queued job ends at once instead of sleeping on a job that no longer exists. A shared
/// store (PostgreSQL) delivers it through its listener (every node); a single-process one
/// (SQLite), whose `listen` returns at once, keeps the sink and calls it in-process.
pub async fn delete_of_a_queued_job_wakes_its_followers(s: Subject) {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let sink: gostint_core::EventSink = Arc::new(move |event| {
        let _ = tx.send(event);
    });
    let store = s.store.clone();
    let listening = tokio::spawn(async move { store.listen(sink).await });
    let running = if s.delivers_events {
        // Let the listener subscribe first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some(listening)
    } else {
        let done = tokio::time::timeout(Duration::from_millis(500), listening).await;
        done.expect("a single-process store's listen returns at once").expect("join").expect("listen");
        None
    };
    let queued = enqueue(&s, "q", &alice(), at(1)).await;
    let other = enqueue(&s, "other", &alice(), at(2)).await;
    while events.try_recv().is_ok() {}
    assert_eq!(s.store.delete(&queued, Visibility::Owner(&alice())).await.expect("delete"), DeleteOutcome::Deleted);
    let start = std::time::Instant::now();
    loop {
        let left = Duration::from_secs(1).saturating_sub(start.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(gostint_core::StoreEvent::JobChanged(id))) if id == queued => break,
            Ok(Some(gostint_core::StoreEvent::JobChanged(id))) => {
                assert_ne!(id, other, "a delete announced another job");
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the sink was dropped before the delete was announced"),
            Err(_) => panic!("no JobChanged({queued}) within 1 s of deleting the queued job"),
        }
    }
    assert_eq!(s.store.delete(&queued, Visibility::All).await.expect("delete"), DeleteOutcome::NotFound);
    if let Some(task) = running {
        task.abort();
    }
}

/// `running` and `stopping` jobs are not deleted, even by an admin.
pub async fn delete_refuses_active_jobs(s: Subject) {
    let running = running_job(&s, "r", &node_a(), at(1)).await;
    let stopping = running_job(&s, "s", &node_a(), at(2)).await;
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));
    for id in [running, stopping] {
        assert_eq!(s.store.delete(&id, Visibility::Owner(&alice())).await.expect("delete"), DeleteOutcome::Active);
        assert_eq!(s.store.delete(&id, Visibility::All).await.expect("delete"), DeleteOutcome::Active);
        assert!(s.store.get(&id).await.expect("get").is_some());
    }
}

/// Another owner's job answers `NotFound`, exactly like a missing one, and stays.
pub async fn delete_of_another_owners_job_is_not_found(s: Subject) {
    let running = running_job(&s, "q", &node_a(), at(1)).await;
    let id = enqueue(&s, "q", &alice(), at(2)).await; // stays queued behind `running`
    assert_eq!(s.store.delete(&id, Visibility::Owner(&bob())).await.expect("delete"), DeleteOutcome::NotFound);
    assert!(s.store.get(&id).await.expect("get").is_some());
    assert_eq!(s.store.delete(&running, Visibility::Owner(&bob())).await.expect("delete"), DeleteOutcome::NotFound);
    assert_eq!(s.store.delete(&id, Visibility::All).await.expect("delete"), DeleteOutcome::Deleted);
}

// ---------------------------------------------------------------- list and counts

/// Newest first by `submitted`; on equal `submitted` the later insertion comes first.
pub async fn list_is_newest_first_with_later_insertion_first_on_ties(s: Subject) {
    let a = enqueue(&s, "q", &alice(), at(10)).await;
    let b = enqueue(&s, "q", &alice(), at(30)).await;
    let c = enqueue(&s, "r", &alice(), at(20)).await;
    let d = enqueue(&s, "s", &alice(), at(30)).await;
    let e = enqueue(&s, "q", &alice(), at(30)).await;

    let (page, total) = s.store.list(Visibility::All, 0, 10).await.expect("list");
    assert_eq!(page.iter().map(|j| j.id).collect::<Vec<_>>(), vec![e, d, b, c, a]);
    assert_eq!(total, 5);
    let (mine, total) = s.store.list(Visibility::Owner(&alice()), 0, 10).await.expect("list");
    assert_eq!(mine.iter().map(|j| j.id).collect::<Vec<_>>(), vec![e, d, b, c, a]);
    assert_eq!(total, 5);
}

/// `skip` and `limit` page through the list; `total` counts every visible job regardless.
pub async fn list_pages_with_skip_and_limit(s: Subject) {
    let mut newest_first = Vec::new();
    for i in 0..25 {
        newest_first.insert(0, enqueue(&s, "q", &alice(), at(i)).await);
    }
    let page = |skip: u64, limit: u64| {
        let store = s.store.clone();
        async move {
            let (jobs, total) = store.list(Visibility::Owner(&alice()), skip, limit).await.expect("list");
            (jobs.into_iter().map(|j| j.id).collect::<Vec<_>>(), total)
        }
    };
    assert_eq!(page(0, 10).await, (newest_first[..10].to_vec(), 25));
    assert_eq!(page(10, 10).await, (newest_first[10..20].to_vec(), 25));
    assert_eq!(page(20, 10).await, (newest_first[20..].to_vec(), 25));
    assert_eq!(page(30, 10).await, (vec![], 25));
    assert_eq!(page(3, 0).await, (vec![], 25));
    assert_eq!(page(u64::MAX, u64::MAX).await, (vec![], 25));
    assert_eq!(page(24, u64::MAX).await, (newest_first[24..].to_vec(), 25));
}

/// An owner lists and counts only its own jobs; an admin lists and counts all.
pub async fn list_shows_and_counts_only_visible_jobs(s: Subject) {
    for i in 0..3 {
        enqueue(&s, "q", &alice(), at(i)).await;
    }
    for i in 3..5 {
        enqueue(&s, "q", &bob(), at(i)).await;
    }
    let (jobs, total) = s.store.list(Visibility::Owner(&alice()), 0, 10).await.expect("list");
    assert_eq!((jobs.len(), total), (3, 3));
    assert!(jobs.iter().all(|j| j.owner == alice()));
    let (jobs, total) = s.store.list(Visibility::Owner(&bob()), 0, 10).await.expect("list");
    assert_eq!((jobs.len(), total), (2, 2));
    assert!(jobs.iter().all(|j| j.owner == bob()));
    let (jobs, total) = s.store.list(Visibility::All, 0, 10).await.expect("list");
    assert_eq!((jobs.len(), total), (5, 5));
    let stranger = Owner::new("nobody");
    let (jobs, total) = s.store.list(Visibility::Owner(&stranger), 0, 10).await.expect("list");
    assert_eq!((jobs.len(), total), (0, 0));
}

/// `count_by_status` counts every status over the whole store (absent = 0).
pub async fn count_by_status_counts_every_status(s: Subject) {
    let empty = s.store.count_by_status().await.expect("count_by_status");
    assert!(JobStatus::ALL.iter().all(|st| count(&empty, *st) == 0), "{empty:?}");

    let _running = running_job(&s, "running", &node_a(), at(1)).await;
    let stopping = running_job(&s, "stopping", &node_a(), at(2)).await;
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));
    let success = running_job(&s, "success", &node_a(), at(3)).await;
    assert!(finish(&s, &success, &node_a(), JobStatus::Success, at(4)).await);
    let na = running_job(&s, "na", &node_a(), at(5)).await;
    assert!(finish(&s, &na, &node_a(), JobStatus::NotAuthorised, at(6)).await);
    let unknown = running_job(&s, "unknown", &node_b(), at(7)).await;
    assert_eq!(s.lose_node(&node_b(), at(8)).await, 1);
    assert_eq!(status(&s, &unknown).await, JobStatus::Unknown);
    let killed = enqueue(&s, "failed", &alice(), at(9)).await;
    assert!(kill(&s, &killed, Visibility::All, at(10)).await.is_some());
    enqueue(&s, "queued", &alice(), at(100)).await;
    enqueue(&s, "queued", &bob(), at(101)).await;

    let counts = s.store.count_by_status().await.expect("count_by_status");
    let expected = [
        (JobStatus::Queued, 2),
        (JobStatus::Running, 1),
        (JobStatus::Stopping, 1),
        (JobStatus::Success, 1),
        (JobStatus::Failed, 1),
        (JobStatus::NotAuthorised, 1),
        (JobStatus::Unknown, 1),
    ];
    for (st, n) in expected {
        assert_eq!(count(&counts, st), n, "{st} in {counts:?}");
    }
}

/// `count_active_on` counts one node's `running` + `stopping` jobs.
pub async fn count_active_on_counts_running_and_stopping_of_one_node(s: Subject) {
    assert_eq!(s.store.count_active_on(&node_a()).await.expect("count_active_on"), 0);
    let _r = running_job(&s, "r", &node_a(), at(1)).await;
    let st = running_job(&s, "s", &node_a(), at(2)).await;
    assert!(s.store.mark_stopping(&st).await.expect("mark_stopping"));
    let done = running_job(&s, "d", &node_a(), at(3)).await;
    assert!(finish(&s, &done, &node_a(), JobStatus::Success, at(4)).await);
    let _b = running_job(&s, "b", &node_b(), at(5)).await;
    enqueue(&s, "r", &alice(), at(6)).await;

    assert_eq!(s.store.count_active_on(&node_a()).await.expect("count_active_on"), 2);
    assert_eq!(s.store.count_active_on(&node_b()).await.expect("count_active_on"), 1);
}

/// Retention deletes final jobs (`unknown` included) whose `ended` is before the cutoff, and
/// never a queued, running or stopping job.
pub async fn purge_removes_only_final_jobs_ended_before_the_cutoff(s: Subject) {
    let old_success = running_job(&s, "a", &node_a(), at(1)).await;
    assert!(finish(&s, &old_success, &node_a(), JobStatus::Success, at(100)).await);
    let old_unknown = running_job(&s, "b", &node_b(), at(2)).await;
    assert_eq!(s.lose_node(&node_b(), at(150)).await, 1);
    let at_cutoff = running_job(&s, "c", &node_a(), at(3)).await;
    assert!(finish(&s, &at_cutoff, &node_a(), JobStatus::Failed, at(180)).await);
    let recent = enqueue(&s, "d", &alice(), at(4)).await;
    assert!(kill(&s, &recent, Visibility::All, at(200)).await.is_some());
    let running = running_job(&s, "e", &node_a(), at(5)).await;
    let stopping = running_job(&s, "f", &node_a(), at(6)).await;
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));
    let queued = enqueue(&s, "e", &alice(), at(7)).await; // ended is unset (0): never purged

    assert_eq!(s.store.purge_ended_before(at(180)).await.expect("purge"), 2);
    for gone in [old_success, old_unknown] {
        assert!(s.store.get(&gone).await.expect("get").is_none(), "{gone} purged");
    }
    for kept in [at_cutoff, recent, running, stopping, queued] {
        assert!(s.store.get(&kept).await.expect("get").is_some(), "{kept} kept");
    }
    assert_eq!(s.store.purge_ended_before(at(i64::MAX - T0)).await.expect("purge"), 2);
    for kept in [running, stopping, queued] {
        assert!(s.store.get(&kept).await.expect("get").is_some(), "{kept} kept");
    }
}

// ---------------------------------------------------------------- small updates

/// `set_container` records the resolved image and the container id.
pub async fn set_container_records_image_and_container(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    s.store.set_container(&id, "docker.io/library/alpine:3.20", "abc123def").await.expect("set_container");
    let rec = get(&s, &id).await;
    assert_eq!(rec.container_image, "docker.io/library/alpine:3.20");
    assert_eq!(rec.container_id, "abc123def");
    assert_eq!(rec.definition.container_image, full_definition("q").container_image, "definition untouched");
}

/// `clear_wrap_secret_id` blanks the spent wrapping token and nothing else.
pub async fn clear_wrap_secret_id_blanks_only_the_token(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    let before = get(&s, &id).await;
    s.store.clear_wrap_secret_id(&id).await.expect("clear_wrap_secret_id");
    let rec = get(&s, &id).await;
    assert_eq!(rec.wrap_secret_id, "");
    assert_eq!(rec.payload, before.payload, "payload still needed for decryption");
    assert_eq!(rec.definition, before.definition);
    assert_eq!(rec.status, JobStatus::Running);
}

/// Text with NUL characters (a container may print them) does not make a job unstorable:
/// enqueue and finish succeed, and what is read back keeps the text around each NUL
/// (PostgreSQL cannot store NUL and may replace it).
pub async fn text_with_nul_characters_is_stored(s: Subject) {
    let mut job = new_job("q", &alice(), at(1));
    job.definition.env_vars = vec!["BIN=a\0b".into()];
    job.definition.run = vec!["printf".into(), "\0".into()];
    let id = job.id;
    s.store.enqueue(job).await.expect("enqueue with NUL");
    let rec = get(&s, &id).await;
    assert_eq!(rec.definition.env_vars, vec!["BIN=a\0b".to_string()], "definitions are JSON: NUL kept");
    assert_eq!(rec.definition.run[1], "\0");
    claim_expecting(&s, &node_a(), at(2), &[id]).await;

    let outcome =
        Outcome { status: JobStatus::Success, output: "before\0after".into(), stderr: "\0".into(), return_code: 0 };
    assert!(s.store.finish(&id, &node_a(), outcome, at(3)).await.expect("finish with NUL"));
    let rec = get(&s, &id).await;
    assert_eq!(rec.status, JobStatus::Success);
    assert!(
        rec.output.starts_with("before") && rec.output.ends_with("after") && rec.output.len() > 11,
        "{:?}",
        rec.output
    );
    assert!(!rec.stderr.is_empty());
}

/// The stale-node sweep (docs/design.md §5.6): every node whose last heartbeat is before the cutoff
/// has **all** its `running`/`stopping` jobs ended `unknown` with `ended` = now and the
/// node-lost output, their queues freed, and its row deleted; it is reaped once.
pub async fn reap_stale_nodes_ends_every_active_job_of_each_stale_node_and_frees_its_queues(s: Subject) {
    let node_c = NodeId::new("7d9c8f4e-0000-4000-8000-00000000000c");
    for (node, seen) in [(node_a(), 10), (node_b(), 20), (node_c.clone(), 500)] {
        s.store.heartbeat(&node, at(seen)).await.expect("heartbeat");
    }
    let a1 = running_job(&s, "a1", &node_a(), at(1)).await;
    let a2 = running_job(&s, "a2", &node_a(), at(2)).await;
    let a3 = running_job(&s, "a3", &node_a(), at(3)).await;
    assert!(s.store.mark_stopping(&a3).await.expect("mark_stopping"));
    let a_done = running_job(&s, "a4", &node_a(), at(4)).await;
    assert!(finish(&s, &a_done, &node_a(), JobStatus::Success, at(5)).await);
    let b1 = running_job(&s, "b1", &node_b(), at(6)).await;
    let c1 = running_job(&s, "c1", &node_c, at(7)).await;
    let next_a1 = enqueue(&s, "a1", &alice(), at(8)).await;
    let next_a3 = enqueue(&s, "a3", &alice(), at(9)).await;
    let next_c1 = enqueue(&s, "c1", &alice(), at(10)).await;

    let mut reaped = s.store.reap_stale_nodes(at(100), at(600), &node_c).await.expect("reap");
    reaped.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(reaped, vec![node_a(), node_b()]);
    for (id, node) in [(a1, node_a()), (a2, node_a()), (a3, node_a()), (b1, node_b())] {
        let rec = get(&s, &id).await;
        assert_eq!(rec.status, JobStatus::Unknown, "{id}");
        assert_eq!(rec.ended, at(600), "{id}");
        assert_eq!(rec.output, node_lost_message(&node), "{id}");
        assert_eq!((rec.payload, rec.wrap_secret_id.as_str()), (None, ""), "secrets blanked");
    }
    assert_eq!(status(&s, &a_done).await, JobStatus::Success, "ended jobs untouched");
    assert_eq!(status(&s, &c1).await, JobStatus::Running, "a fresh node untouched");

    // The queues are free again; the fresh node's queue is still busy.
    claim_expecting(&s, &node_c, at(601), &[next_a1, next_a3]).await;
    assert_eq!(status(&s, &next_c1).await, JobStatus::Queued);

    // The rows are gone: nothing to reap twice, and no orphans left behind.
    assert!(s.store.reap_stale_nodes(at(100), at(700), &node_c).await.expect("reap").is_empty());
    assert!(s.store.orphan_owners(&node_c).await.expect("orphan_owners").is_empty());
    // A node that comes back heartbeats again and may still record its real outcome.
    s.store.heartbeat(&node_a(), at(800)).await.expect("heartbeat");
    assert!(finish(&s, &a1, &node_a(), JobStatus::Success, at(801)).await);
}

/// Nodes seen at or after the cutoff are not reaped, nor is the caller (`except`) however
/// stale its own row looks.
pub async fn reap_stale_nodes_spares_fresh_nodes_and_never_the_caller(s: Subject) {
    s.store.heartbeat(&node_a(), at(10)).await.expect("heartbeat");
    s.store.heartbeat(&node_b(), at(100)).await.expect("heartbeat");
    let mine = running_job(&s, "a", &node_a(), at(1)).await;
    let fresh = running_job(&s, "b", &node_b(), at(2)).await;

    let reaped = s.store.reap_stale_nodes(at(100), at(200), &node_a()).await.expect("reap");
    assert!(reaped.is_empty(), "{reaped:?}");
    assert_eq!(status(&s, &mine).await, JobStatus::Running);
    assert_eq!(status(&s, &fresh).await, JobStatus::Running);
    assert!(s.store.orphan_owners(&node_b()).await.expect("orphan_owners").is_empty(), "rows kept");
}

/// A later heartbeat moves `last_seen` forward (an upsert), so the node is not stale.
pub async fn heartbeat_keeps_a_node_from_being_reaped(s: Subject) {
    s.store.heartbeat(&node_a(), at(10)).await.expect("heartbeat");
    s.store.heartbeat(&node_a(), at(300)).await.expect("heartbeat again");
    let id = running_job(&s, "a", &node_a(), at(1)).await;

    assert!(s.store.reap_stale_nodes(at(200), at(400), &node_b()).await.expect("reap").is_empty());
    assert_eq!(status(&s, &id).await, JobStatus::Running);
    let reaped = s.store.reap_stale_nodes(at(301), at(400), &node_b()).await.expect("reap");
    assert_eq!(reaped, vec![node_a()]);
    assert_eq!(status(&s, &id).await, JobStatus::Unknown);
}

/// `deregister` removes only the node's row (a clean shutdown): its jobs stay as they are,
/// and with no row it is no longer reaped but shows up as an orphan owner if it left active
/// jobs behind.
pub async fn deregister_removes_the_node_row_only(s: Subject) {
    s.store.heartbeat(&node_a(), at(10)).await.expect("heartbeat");
    s.store.heartbeat(&node_b(), at(10)).await.expect("heartbeat");
    let id = running_job(&s, "a", &node_a(), at(1)).await;
    s.store.deregister(&node_a()).await.expect("deregister");
    s.store.deregister(&node_a()).await.expect("deregister of a missing row is fine");

    assert_eq!(status(&s, &id).await, JobStatus::Running);
    let except = NodeId::new("7d9c8f4e-0000-4000-8000-00000000000c");
    assert_eq!(s.store.orphan_owners(&except).await.expect("orphan_owners"), vec![node_a()]);
    assert_eq!(s.store.reap_stale_nodes(at(1000), at(1001), &except).await.expect("reap"), vec![node_b()]);
    assert_eq!(status(&s, &id).await, JobStatus::Running, "a node without a row is not reaped");
}

/// `orphan_owners` lists, once each, the nodes other than `except` that own
/// `running`/`stopping` jobs but have no node row; not nodes with a row, not nodes whose jobs
/// all ended.
pub async fn orphan_owners_lists_owners_of_active_jobs_without_a_node_row(s: Subject) {
    let node = |c: char| NodeId::new(format!("7d9c8f4e-0000-4000-8000-00000000000{c}"));
    let (with_row, running_twice, stopping, ended, me) = (node('a'), node('b'), node('c'), node('d'), node('e'));
    s.store.heartbeat(&with_row, at(1)).await.expect("heartbeat");
    running_job(&s, "q1", &with_row, at(1)).await;
    running_job(&s, "q2", &running_twice, at(2)).await;
    running_job(&s, "q3", &running_twice, at(3)).await;
    let st = running_job(&s, "q4", &stopping, at(4)).await;
    assert!(s.store.mark_stopping(&st).await.expect("mark_stopping"));
    let done = running_job(&s, "q5", &ended, at(5)).await;
    assert!(finish(&s, &done, &ended, JobStatus::Success, at(6)).await);
    running_job(&s, "q6", &me, at(7)).await;

    let mut orphans = s.store.orphan_owners(&me).await.expect("orphan_owners");
    orphans.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(orphans, vec![running_twice.clone(), stopping.clone()]);

    // What the server does with one at start: end its jobs.
    assert_eq!(s.lose_node(&running_twice, at(10)).await, 2);
    assert_eq!(s.store.orphan_owners(&me).await.expect("orphan_owners"), vec![stopping]);
}

/// A single-process store's `listen` returns `Ok` at once (there is nothing to deliver); a
/// shared store's keeps running until it is cancelled or the store closes.
pub async fn listen_follows_the_kind_of_store(s: Subject) {
    let sink: gostint_core::EventSink = Arc::new(|_event| {});
    let listening = s.store.listen(sink);
    match tokio::time::timeout(Duration::from_millis(500), listening).await {
        Ok(result) => {
            assert!(!s.delivers_events, "a shared store's listen returned: {result:?}");
            result.expect("listen");
        }
        Err(_elapsed) => assert!(s.delivers_events, "a single-process store's listen did not return at once"),
    }
}

// ---------------------------------------------------------------- reliability

/// `active_ids_on` lists the node's own `running` and `stopping` jobs, oldest first, and no
/// queued, final or other node's job.
pub async fn active_ids_on_lists_this_nodes_running_and_stopping_jobs(s: Subject) {
    let running = running_job(&s, "a", &node_a(), at(1)).await;
    let stopping = running_job(&s, "b", &node_a(), at(2)).await;
    let _other_node = running_job(&s, "c", &node_b(), at(3)).await;
    let ended = running_job(&s, "d", &node_a(), at(4)).await;
    let _queued = enqueue(&s, "e", &alice(), at(5)).await;
    assert!(finish(&s, &ended, &node_a(), JobStatus::Success, at(6)).await);
    assert!(kill(&s, &stopping, Visibility::All, at(7)).await.is_some());
    assert!(s.store.mark_stopping(&stopping).await.expect("mark_stopping"));
    assert_eq!(s.store.active_ids_on(&node_a()).await.expect("active_ids_on"), vec![running, stopping]);
    assert_eq!(s.store.active_ids_on(&NodeId::new("nobody")).await.expect("active_ids_on"), vec![]);
}

// ---------------------------------------------------------------- image GC

/// Only pulled images are recorded, per engine; a touch keeps one, an unrecorded image is
/// never listed, and forgetting is conditional on still being unused.
pub async fn image_gc_sees_only_recorded_images_per_engine_unused_since_the_cutoff(s: Subject) {
    let st = &s.store;
    let t = |ms: i64| Timestamp::from_millis(1_700_000_000_000 + ms);
    st.record_image_pull("e1", "docker.io/library/a:1", t(0)).await.expect("record");
    st.record_image_pull("e1", "docker.io/library/b:1", t(0)).await.expect("record");
    st.record_image_pull("e2", "docker.io/library/a:1", t(0)).await.expect("record");
    // A touch of an image gostint never pulled records nothing.
    st.touch_image("e1", "docker.io/library/preexisting:1", t(50)).await.expect("touch");
    st.touch_image("e1", "docker.io/library/b:1", t(200)).await.expect("touch");
    // A touch never moves last_used back.
    st.touch_image("e1", "docker.io/library/b:1", t(10)).await.expect("touch");
    let old = st.images_unused_since("e1", t(100)).await.expect("list");
    assert_eq!(old, ["docker.io/library/a:1"]);
    assert_eq!(st.images_unused_since("e1", t(300)).await.expect("list").len(), 2);
    assert_eq!(st.images_unused_since("e3", t(300)).await.expect("list"), Vec::<String>::new());
    // Used again since it was listed: not forgotten.
    st.touch_image("e1", "docker.io/library/a:1", t(150)).await.expect("touch");
    assert!(!st.forget_image("e1", "docker.io/library/a:1", t(100)).await.expect("forget"));
    assert!(st.forget_image("e1", "docker.io/library/a:1", t(160)).await.expect("forget"));
    assert!(!st.forget_image("e1", "docker.io/library/a:1", t(160)).await.expect("forget"), "once");
    assert_eq!(st.images_unused_since("e2", t(100)).await.expect("list"), ["docker.io/library/a:1"], "per engine");
}

/// `append_output` appends (or with `replace` sets) the live output of a running job of the
/// calling node, and refuses other nodes' jobs, queued and final ones (docs/design.md §12).
pub async fn append_output_adds_to_a_running_job_of_its_node_only(s: Subject) {
    let id = running_job(&s, "q", &node_a(), at(1)).await;
    assert!(s.store.append_output(&id, &node_a(), "tick1\n", "", false).await.expect("append"));
    assert!(s.store.append_output(&id, &node_a(), "100% é\n", "to-err\n", false).await.expect("append"));
    let rec = get(&s, &id).await;
    assert_eq!((rec.output.as_str(), rec.stderr.as_str()), ("tick1\n100% é\n", "to-err\n"));
    assert_eq!(rec.status, JobStatus::Running);
    assert!(!s.store.append_output(&id, &node_b(), "x", "y", false).await.expect("append"), "not node b's job");
    assert!(s.store.append_output(&id, &node_a(), "tail", "", true).await.expect("replace"));
    assert_eq!(get(&s, &id).await.output, "tail");
    assert_eq!(get(&s, &id).await.stderr, "");
    let outcome = gostint_core::Outcome::message(JobStatus::Success, "tail");
    assert!(s.store.finish(&id, &node_a(), outcome, at(2)).await.expect("finish"));
    assert!(!s.store.append_output(&id, &node_a(), "late", "", false).await.expect("append"), "final job");
    let queued = new_job("q2", &alice(), at(3));
    let qid = queued.id;
    s.store.enqueue(queued).await.expect("enqueue");
    assert!(!s.store.append_output(&qid, &node_a(), "x", "", false).await.expect("append"), "queued job");
    assert_eq!(get(&s, &qid).await.output, "");
}

/// Issue 16, item 9: a list page carries only the last [`gostint_core::limits::LIST_OUTPUT_TAIL`]
/// characters of each job's `output` and `stderr` (cut in the query), never cutting a
/// character; `get` carries the whole.
pub async fn list_items_carry_a_bounded_tail_of_output_and_stderr(s: Subject) {
    let node = NodeId::new("n-tail");
    let id = running_job(&s, "tail", &node, at(10)).await;
    let tail = gostint_core::limits::LIST_OUTPUT_TAIL;
    let output = format!("{}{}end", "a".repeat(100_000), "é".repeat(tail));
    let stderr = "e".repeat(50_000);
    let outcome =
        Outcome { status: JobStatus::Success, output: output.clone(), stderr: stderr.clone(), return_code: 0 };
    assert!(s.store.finish(&id, &node, outcome, at(20)).await.expect("finish"));
    let short = enqueue(&s, "other", &alice(), at(30)).await;

    let (page, _) = s.store.list(Visibility::All, 0, 10).await.expect("list");
    let listed = page.iter().find(|j| j.id == id).expect("listed");
    let want: String = output.chars().rev().take(tail).collect::<Vec<_>>().into_iter().rev().collect();
    assert_eq!(listed.output, want);
    assert_eq!(listed.stderr.len(), tail);
    assert_eq!(page.iter().find(|j| j.id == short).expect("listed").output, "");
    let whole = s.store.get(&id).await.expect("get").expect("job");
    assert_eq!((whole.output.len(), whole.stderr.len()), (output.len(), stderr.len()));
}
