//! `postie import …` and `postie export …`: arguments, and the exit codes the importers'
//! reports decide.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit;

/// `postie import KIND …`.
#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// A Postman collection (v2.0 or v2.1), with environment files.
    Postman {
        /// The collection (`*.postman_collection.json`).
        collection: PathBuf,
        /// An environment file (`*.postman_environment.json`); repeatable.
        #[arg(long = "env", short = 'e', value_name = "ENVIRONMENT.json")]
        envs: Vec<PathBuf>,
        /// Write the collection here (secrets go to a .env beside it); default stdout.
        #[arg(long, short = 'o', value_name = "OUT.yaml")]
        output: Option<PathBuf>,
    },
}

/// `postie export KIND …`.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {}

/// Runs an import; the exit code says whether everything came in (0), something was left out
/// (1) or the input is not a file of that kind (2).
pub fn import(what: ImportWhat) -> i32 {
    match what {
        ImportWhat::Postman {
            collection,
            envs,
            output,
        } => match super::postman::import(&collection, &envs) {
            Ok(imp) => {
                super::write_import(&imp, &collection.display().to_string(), output.as_deref())
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::COLLECTION
            }
        },
    }
}

/// Runs an export.
pub async fn export(what: ExportWhat) -> i32 {
    match what {}
}
