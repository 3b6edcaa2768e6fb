//! The live progress line of a long run in a terminal: steps done of the total, the request in
//! flight, elapsed time — redrawn on stderr while a step runs (a polling step included), cleared
//! before each step line is printed, and never written into a pipe or a CI log.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum When {
    /// When stderr is a terminal, not in CI (`CI` set) and not on a dumb terminal.
    #[default]
    Auto,
    /// Always (also into a pipe).
    Always,
    /// Never.
    Never,
}

impl When {
    /// Whether a progress line is drawn.
    pub fn enabled(self) -> bool {
        match self {
            When::Always => true,
            When::Never => false,
            When::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("CI").is_none()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }
}

struct State {
    done: usize,
    total: usize,
    current: String,
    started: Instant,
    shown: bool,
    finished: bool,
}

/// A progress line; all drawing goes through its lock, so step lines and the line never mix.
pub struct Progress {
    state: Option<Arc<Mutex<State>>>,
}

const CLEAR: &str = "\r\x1b[2K";

impl Progress {
    /// A line over `total` steps, redrawn every 250 ms while enabled; a no-op otherwise.
    pub fn start(when: When, total: usize) -> Progress {
        if !when.enabled() {
            return Progress { state: None };
        }
        let state = Arc::new(Mutex::new(State {
            done: 0,
            total,
            current: String::new(),
            started: Instant::now(),
            shown: false,
            finished: false,
        }));
        let ticker = Arc::downgrade(&state);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let Some(s) = ticker.upgrade() else { return };
                let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
                if s.finished {
                    return;
                }
                draw(&mut s);
            }
        });
        Progress { state: Some(state) }
    }

    /// Runs `print` (which writes a step line) with the progress line cleared, then draws it
    /// again for the next request.
    pub fn around(&self, next: Option<&str>, done: usize, print: impl FnOnce()) {
        let Some(state) = &self.state else {
            print();
            return;
        };
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        if s.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{CLEAR}");
            let _ = err.flush();
            s.shown = false;
        }
        print();
        s.done = done;
        s.current = next.unwrap_or("").to_string();
        if next.is_some() {
            draw(&mut s);
        }
    }

    /// Clears the line for good.
    pub fn finish(&self) {
        if let Some(state) = &self.state {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.finished = true;
            if s.shown {
                let _ = write!(std::io::stderr(), "{CLEAR}");
                s.shown = false;
            }
        }
    }
}

fn draw(s: &mut State) {
    if s.current.is_empty() {
        return;
    }
    let secs = s.started.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "{CLEAR}[{}/{}] {} · {secs:.1}s",
        s.done, s.total, s.current
    );
    let _ = err.flush();
    s.shown = true;
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
