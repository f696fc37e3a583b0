//! When the in-process gostint asked the engine for each job's container: the worker's
//! `creating the container` debug event, caught by a tracing layer that listens to nothing
//! else (so the other crates' debug events cost nothing). Splits figure 3's "claimed →
//! container created" into gostint's part and the engine's create.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::report::now_ms;

type Map = Arc<Mutex<HashMap<String, f64>>>;

static STAMPS: OnceLock<Map> = OnceLock::new();

#[derive(Default)]
struct Fields {
    message: String,
    job_id: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "job_id" => self.job_id = format!("{value:?}"),
            _ => {}
        }
    }
}

struct CreateRequests(Map);

impl<S: tracing::Subscriber> Layer<S> for CreateRequests {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let at = now_ms();
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message == "creating the container" {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(f.job_id, at);
        }
    }
}

/// Installs the layer as the process's subscriber (once).
pub(crate) fn install() {
    let map = STAMPS.get_or_init(Map::default).clone();
    let layer =
        CreateRequests(map).with_filter(Targets::new().with_target("gostint_worker::pipeline", tracing::Level::DEBUG));
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
}

/// When gostint asked for job `id`'s container (ms since the epoch), if it did.
pub(crate) fn create_requested(id: &str) -> Option<f64> {
    STAMPS.get()?.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied()
}
