//! Image GC (docs/design.md §5.7): remove only images this deployment pulled (recorded in the store
//! per engine) once unused for `GOSTINT_IMAGE_GC_AGE`; never images that were already there.
//!
//! Race-free with jobs starting: a job holds [`using`] (a shared guard) from the moment it
//! looks the image up until its container exists, and a collection takes the exclusive
//! guard for each removal. Once a container exists the engine itself refuses to remove its
//! image (no `force`). Across nodes sharing one engine the store's conditional
//! [`JobStore::forget_image`] and the engine's refusal keep an image a job just touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gostint_core::{ContainerRuntime, JobStore, StoreError, Timestamp};
use tokio::sync::{RwLock, RwLockReadGuard};
use tracing::{info, warn};

/// Shared by jobs (between image lookup and container create), exclusive for a removal.
static IN_USE: RwLock<()> = RwLock::const_new(());

/// Last `touch_image` per image in this process: one store write per image per minute is
/// plenty against an age measured in hours.
static TOUCHED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Held by a job from the image lookup until its container is created.
pub async fn using() -> RwLockReadGuard<'static, ()> {
    IN_USE.read().await
}

/// Whether `image` was touched in the last minute by this process (and notes it if not).
pub(crate) fn touch_due(image: &str) -> bool {
    let mut map = TOUCHED.lock().expect("the touch map is never poisoned: no panics inside");
    let map = map.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match map.get(image) {
        Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
        _ => {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(image.to_string(), now);
            true
        }
    }
}

/// One collection on `engine`: every recorded image unused since `now - age` is forgotten
/// and removed; one a container still uses is recorded again as used `now`. Returns the
/// images removed.
///
/// # Errors
/// The store failed; engine failures are logged per image.
pub async fn collect_once(
    store: &Arc<dyn JobStore>,
    runtime: &Arc<dyn ContainerRuntime>,
    engine: &str,
    age: Duration,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    let cutoff =
        Timestamp::from_millis(now.millis().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)));
    let mut removed = Vec::new();
    for image in store.images_unused_since(engine, cutoff).await? {
        let _exclusive = IN_USE.write().await;
        if !store.forget_image(engine, &image, cutoff).await? {
            continue; // used again meanwhile
        }
        match runtime.remove_image(&image).await {
            Ok(true) => {
                info!(image = %image, "image GC removed an image gostint pulled");
                removed.push(image);
            }
            Ok(false) => {
                // In use by a container, or already gone: keep it recorded as in use now if
                // the engine still has it.
                if let Ok(Some(_)) = runtime.image_id(&image).await {
                    store.record_image_pull(engine, &image, Timestamp::now()).await?;
                }
            }
            Err(e) => {
                warn!(image = %image, error = %e, "image GC could not remove an image");
                store.record_image_pull(engine, &image, now).await?;
            }
        }
    }
    Ok(removed)
}

/// Collects every 60 s + 0–60 s until `cancel`; errors are logged and retried next time.
pub async fn run(
    store: Arc<dyn JobStore>,
    runtime: Arc<dyn ContainerRuntime>,
    engine: String,
    age: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        let pause = Duration::from_secs(60) + Duration::from_millis(u64::from(rand_ms()));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => return,
        }
        if let Err(e) = collect_once(&store, &runtime, &engine, age, Timestamp::now()).await {
            warn!(error = %e, "image GC failed; retrying later");
        }
    }
}

/// 0–60,000 from the clock's low bits (jitter only: nodes sharing a store do not collect
/// in step).
fn rand_ms() -> u32 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    nanos % 60_000
}
