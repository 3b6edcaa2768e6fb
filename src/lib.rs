//! postie: an API workbench for OAuth2-protected APIs, with a faithful Constant Contact mock.
//!
//! A request flows through the modules in this order:
//! `collection` (YAML → model) → `scope` + `template` (render) → `exchange` (send) →
//! `chain` + `capture` (bind) → `state` (persist), driven by `runner`; `script` runs a request's
//! JavaScript before and after it; `auth` keeps tokens fresh, `guard` watches PUTs,
//! `output`/`report` render results, `cli`/`repl` are thin shells over `session`. `interop` turns
//! other tools' files into collections and back. `mock` is the Constant Contact server and knows
//! nothing of the runner.

#![warn(missing_docs)]

pub mod assert;
pub mod auth;
pub mod capture;
pub mod chain;
pub mod cli;
pub mod collection;
pub mod diff;
pub mod doc;
pub mod exchange;
pub mod exit;
pub mod fake;
pub mod guard;
pub mod interop;
pub mod jwt;
pub mod limits;
pub mod lint;
pub mod mock;
pub mod openapi;
pub mod output;
pub mod progress;
pub mod redact;
pub mod repl;
pub mod report;
pub mod runner;
pub mod scope;
pub mod script;
pub mod secret_hosts;
pub mod session;
pub mod state;
pub mod template;
pub mod util;
pub mod validate;
