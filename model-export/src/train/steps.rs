//! Progress and logging shared by both training paths and by the long fitting steps under them.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// Progress over the training steps (drawn only on a terminal) and log lines that do not tear it.
pub struct Steps {
    bar: ProgressBar,
}

impl Steps {
    pub(crate) fn new(len: u64) -> Steps {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Steps { bar }
    }

    pub fn step(&self, msg: String) {
        self.bar.suspend(|| info!("{msg}"));
        self.bar.inc(1);
    }

    pub fn tick(&self) {
        self.bar.tick();
    }

    pub fn note(&self, msg: String) {
        self.bar.suspend(|| info!("{msg}"));
    }

    pub fn message(&self, msg: &'static str) {
        self.bar.set_message(msg);
    }

    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

pub(crate) fn init_logging(quiet: bool) {
    let level = if quiet { tracing::Level::WARN } else { tracing::Level::INFO };
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(false).without_time().try_init();
}

pub(crate) fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
