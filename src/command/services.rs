//! [`Services`]: the long-lived parts of one engine that statements reach. Built once where the
//! engine is opened (the server, the demo, benchmarks, tests) and shared by every session.

use std::sync::{Arc, Mutex, Weak};

use crate::dataset::Datasets;
use crate::engine::Engine;
use crate::ingest::{Ingest, Limits};
use crate::pipeline::Pipelines;
use crate::query::bind::DatasetSource;
use crate::util::memory::MemoryPool;
use crate::util::sync::lock;

pub struct Services {
    pub engine: Arc<Engine>,
    /// The working memory every query of the engine draws on.
    pub pool: Arc<MemoryPool>,
    /// Where INSERT and COPY into channels go (the HTTP API and MQTT share it).
    pub ingest: Arc<Ingest>,
    pub pipelines: Arc<Pipelines>,
    pub datasets: Arc<Datasets>,
}

/// The services open now, by engine: an engine has one set, however many sessions (two
/// pipeline runners over one engine would store every batch twice).
static OPEN: Mutex<Vec<(usize, Weak<Services>)>> = Mutex::new(Vec::new());

impl Services {
    /// The services of `engine`: the ones already open, or new ones with default ingest
    /// limits and no memory limit. Pipelines and dataset schedules start on first use
    /// ([`Services::start`] starts them at once).
    pub fn of(engine: &Arc<Engine>) -> crate::Result<Arc<Services>> {
        Services::open(engine, Limits::default())
    }

    /// [`Services::of`], new ones taking the ingest limits the server is configured with.
    pub fn open(engine: &Arc<Engine>, limits: Limits) -> crate::Result<Arc<Services>> {
        let key = Arc::as_ptr(engine) as usize;
        let mut open = lock(&OPEN);
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(s) = open.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade()) {
            return Ok(s);
        }
        let ingest = Arc::new(Ingest::new(engine.clone(), limits)?);
        let pipelines = Arc::new(Pipelines::new(engine)?);
        let datasets = Datasets::open(engine)?;
        let pool = engine.memory().clone();
        let s = Arc::new(Services { engine: engine.clone(), pool, ingest, pipelines, datasets });
        open.push((key, Arc::downgrade(&s)));
        Ok(s)
    }

    /// Starts the pipelines and the dataset scheduler and delivery (once).
    pub fn start(&self) {
        self.pipelines.start();
        self.datasets.start();
    }

    /// The datasets as the binder reads them.
    pub fn dataset_source(&self) -> Option<Arc<dyn DatasetSource>> {
        self.datasets.source()
    }
}
