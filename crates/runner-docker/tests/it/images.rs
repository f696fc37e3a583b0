//! Image presence and pulls (no registry is reachable in tests: nothing may need one).

use std::time::Instant;

use gostint_core::{ContainerRuntime, ImageRef, PullPolicy, RuntimeErrorKind};

use crate::{harness, IMAGE, QUICK};

#[tokio::test]
async fn if_not_present_uses_the_local_image_without_pulling() {
    let Some(h) = harness().await else { return };
    let t = Instant::now();

    h.rt.ensure_image(&ImageRef::parse(IMAGE).unwrap(), PullPolicy::IfNotPresent).await.unwrap();
    // No tag means :latest.
    h.rt.ensure_image(&ImageRef::parse("gostint-test/busybox").unwrap(), PullPolicy::IfNotPresent).await.unwrap();

    assert!(t.elapsed() < QUICK);
}

#[tokio::test]
async fn a_missing_image_fails_fast_as_image_missing() {
    let Some(h) = harness().await else { return };
    let image = ImageRef::parse("gostint-test/does-not-exist:1").unwrap();
    let t = Instant::now();

    let err = h.rt.ensure_image(&image, PullPolicy::IfNotPresent).await.unwrap_err();

    let took = t.elapsed();
    eprintln!("missing image failed in {took:?}: {}", err.message);
    assert_eq!(err.kind, RuntimeErrorKind::ImageMissing);
    assert!(!err.message.is_empty() && !err.message.contains("DockerResponseServerError"), "{}", err.message);
    assert!(took < QUICK, "{took:?}");
}

#[tokio::test]
async fn creating_from_a_missing_image_keeps_the_engine_message() {
    let Some(h) = harness().await else { return };
    let mut spec = h.spec(&["true"]);
    spec.image = "gostint-test/does-not-exist:1".into();

    let err = h.rt.create(&spec).await.unwrap_err();

    assert_eq!(err.kind, RuntimeErrorKind::ImageMissing);
    assert!(err.message.contains("No such image"), "{}", err.message);
}
