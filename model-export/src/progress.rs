//! Step progress for long commands: a bar on a terminal, nothing in `--json` mode.

use indicatif::{ProgressBar, ProgressStyle};

pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    pub fn new(total: u64, quiet: bool) -> Self {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar
        });
        Steps { bar }
    }

    pub fn step(&self, message: &'static str) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(message);
        }
        tracing::info!("{message}");
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
