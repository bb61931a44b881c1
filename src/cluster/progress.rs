//! Progress of long cluster work: a live bar on a terminal, plain lines in CI (stderr), JSON lines
//! with `--output json` (stdout).

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live display on a terminal.
    Live,
    /// One line per event on stderr.
    Plain,
    /// One JSON object per event on stdout.
    Json,
    /// Nothing (library use, tests).
    Quiet,
}

impl Mode {
    /// JSON when asked, a live display when the terminal allows it (decided once, in
    /// `commands::Ctx`), plain lines otherwise.
    pub fn new(json: bool, live: bool) -> Mode {
        match (json, live) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Live,
            (false, false) => Mode::Plain,
        }
    }
}

/// Reports events.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts reporting a phase of `total` steps.
    pub fn new(mode: Mode, phase: &str, total: u64) -> Self {
        let bar = (mode == Mode::Live && total > 0).then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {wide_msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(phase.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress { mode, bar }
    }

    /// One event: `phase` (apply, prune, wait…), the object, what happened.
    pub fn event(&self, phase: &str, object: &str, status: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => outln!(
                "{}",
                serde_json::json!({"event": phase, "object": object, "status": status})
            ),
            Mode::Plain => errln!("{phase:<7} {object}: {status}"),
            Mode::Live => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("{object}: {status}"));
                    if status != "unchanged" {
                        bar.println(format!("  {phase} {object}: {status}"));
                    }
                }
            }
        }
    }

    /// A note that is not about one object.
    pub fn note(&self, message: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => outln!(
                "{}",
                serde_json::json!({"event": "note", "message": message})
            ),
            Mode::Plain => errln!("{message}"),
            Mode::Live => match &self.bar {
                Some(bar) => bar.println(message),
                None => errln!("{message}"),
            },
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
