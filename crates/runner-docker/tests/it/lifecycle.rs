//! Stop, remove, labels and engine facts.

use std::time::{Duration, Instant};

use gostint_core::{ContainerRuntime, RuntimeErrorKind};

use crate::{harness, LABEL, QUICK};

#[tokio::test]
async fn stop_ends_a_sleeping_container_after_the_grace_period() {
    let Some(h) = harness().await else { return };
    // The job ignores SIGTERM (Docker's init forwards it), so this also exercises the kill.
    let id = h.rt.create(&h.spec(&["sh", "-c", "trap '' TERM; echo ready; sleep 300"])).await.unwrap();
    h.rt.start(&id).await.unwrap();
    // The trap must be set before the stop: on a loaded machine the shell may not have run
    // its first line yet when `start` returns, and a SIGTERM then ends it at once.
    let ready = Instant::now();
    while !h.rt.logs(&id, false, 100).await.unwrap().stdout.starts_with(b"ready") {
        assert!(ready.elapsed() < Duration::from_secs(30), "the shell never set its trap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();

    h.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    let code = h.rt.wait(&id).await.unwrap();

    let took = t.elapsed();
    eprintln!("stop with 1s grace took {took:?}, exit {code}");
    assert!(took < QUICK, "{took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert_eq!(code, 137);
    // Stopping again, or stopping what is gone, is not an error.
    h.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
    h.rt.remove(&id).await.unwrap();
    h.rt.stop(&id, Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn stop_of_a_created_container_is_fine() {
    let Some(h) = harness().await else { return };
    let id = h.rt.create(&h.spec(&["true"])).await.unwrap();

    h.rt.stop(&id, Duration::from_secs(1)).await.unwrap();

    h.rt.remove(&id).await.unwrap();
}

#[tokio::test]
async fn remove_is_forcible_and_absent_is_fine() {
    let Some(h) = harness().await else { return };
    let id = h.rt.create(&h.spec(&["sleep", "300"])).await.unwrap();
    h.rt.start(&id).await.unwrap();

    h.rt.remove(&id).await.unwrap();
    h.rt.remove(&id).await.unwrap();

    assert_eq!(h.rt.start(&id).await.unwrap_err().kind, RuntimeErrorKind::NotFound);
    assert_eq!(h.rt.wait(&id).await.unwrap_err().kind, RuntimeErrorKind::NotFound);
    assert_eq!(h.rt.logs(&id, false, 100).await.unwrap_err().kind, RuntimeErrorKind::NotFound);
}

#[tokio::test]
async fn remove_labelled_removes_every_matching_container_and_only_those() {
    let Some(h) = harness().await else { return };
    let value = uuid::Uuid::new_v4().to_string();
    let mut tagged = h.spec(&["sleep", "300"]);
    tagged.labels.push(("gostint.node_uuid".into(), value.clone()));
    let running = h.rt.create(&tagged).await.unwrap();
    h.rt.start(&running).await.unwrap();
    h.rt.create(&tagged).await.unwrap();
    h.rt.create(&tagged).await.unwrap();
    let other = h.rt.create(&h.spec(&["true"])).await.unwrap();

    let removed = h.rt.remove_labelled("gostint.node_uuid", &value).await.unwrap();

    assert_eq!(removed, 3);
    assert_eq!(h.rt.remove_labelled("gostint.node_uuid", &value).await.unwrap(), 0);
    assert!(h.rt.read_file(&other, "/etc/passwd").await.unwrap().is_some(), "unlabelled container survives");
    assert_eq!(h.rt.remove_labelled(LABEL, &h.run).await.unwrap(), 1);
}

#[tokio::test]
async fn info_returns_plausible_numbers() {
    let Some(h) = harness().await else { return };

    let info = h.rt.info().await.unwrap();

    assert!(info.images >= 1, "{info:?}");
    assert!(info.containers >= 0 && info.containers_running >= 0, "{info:?}");
    assert_eq!(info.containers, info.containers_running + info.containers_paused + info.containers_stopped);
    assert!(info.mem_total > 0, "{info:?}");
    assert!(!info.architecture.is_empty() && !info.operating_system.is_empty(), "{info:?}");
    assert!(h.rt.api_version().starts_with("1."), "{}", h.rt.api_version());
}
