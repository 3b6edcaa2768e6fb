//! Integration tests, compiled into one binary so linking stays cheap.

mod cli;
mod common;
mod engine;
mod mock_api;
mod oauth;
mod repl;
