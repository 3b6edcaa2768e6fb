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
    /// An OpenAPI 3.0/3.1 or Swagger 2.0 document (YAML or JSON).
    Openapi {
        /// The spec.
        spec: PathBuf,
        /// Write the collection here (secrets go to a .env beside it); default stdout.
        #[arg(long, short = 'o', value_name = "OUT.yaml")]
        output: Option<PathBuf>,
    },
    /// A HAR file saved by a browser (static assets skipped unless --all).
    Har {
        /// The HAR file.
        file: PathBuf,
        /// Keep static assets (images, scripts, stylesheets, fonts).
        #[arg(long)]
        all: bool,
        /// Write the collection here (secrets go to a .env beside it); default stdout.
        #[arg(long, short = 'o', value_name = "OUT.yaml")]
        output: Option<PathBuf>,
    },
    /// curl command lines (one or many; `\` continuations, quoting as a shell reads it).
    Curl {
        /// The file holding them; `-` or nothing reads stdin.
        file: Option<PathBuf>,
        /// Write the collection here (secrets go to a .env beside it); default stdout.
        #[arg(long, short = 'o', value_name = "OUT.yaml")]
        output: Option<PathBuf>,
    },
}

/// `postie export KIND …`.
#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// A Postman v2.1 collection (and environment files) that Postman and Newman accept.
    Postman {
        /// The collection file.
        collection: PathBuf,
        /// Also write this environment as NAME.postman_environment.json beside the output
        /// (secrets as `type: secret` with empty values); repeatable.
        #[arg(long = "env", short = 'e', value_name = "NAME")]
        envs: Vec<String>,
        /// Write the collection here; default stdout.
        #[arg(long, short = 'o', value_name = "OUT.json")]
        output: Option<PathBuf>,
    },
    /// Every request (or one) as a curl command line, rendered with the current variables.
    Curl {
        /// The collection file.
        collection: PathBuf,
        /// Only this request.
        request: Option<String>,
        /// Show secret values instead of masking them.
        #[arg(long)]
        reveal: bool,
        /// Environment, variables, state and mock options.
        #[command(flatten)]
        opts: crate::session::SendOpts,
    },
}

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
        ImportWhat::Openapi { spec, output } => match super::openapi::import(&spec) {
            Ok(imp) => super::write_import(&imp, &spec.display().to_string(), output.as_deref()),
            Err(e) => {
                eprintln!("error: {e}");
                exit::COLLECTION
            }
        },
        ImportWhat::Har { file, all, output } => match super::har::import(&file, all) {
            Ok(imp) => super::write_import(&imp, &file.display().to_string(), output.as_deref()),
            Err(e) => {
                eprintln!("error: {e}");
                exit::COLLECTION
            }
        },
        ImportWhat::Curl { file, output } => match super::curl::import(file.as_deref()) {
            Ok(imp) => {
                let source = file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| "stdin".into());
                super::write_import(&imp, &source, output.as_deref())
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
    match what {
        ExportWhat::Postman {
            collection,
            envs,
            output,
        } => export_postman(&collection, &envs, output.as_deref()),
        ExportWhat::Curl {
            collection,
            request,
            reveal,
            opts,
        } => export_curl(&collection, request.as_deref(), reveal, &opts),
    }
}

/// `export postman`: the collection as JSON (stdout or `-o`), environment files beside it, the
/// report on stderr; exit 1 when something could not be written for Postman.
fn export_postman(
    collection: &std::path::Path,
    envs: &[String],
    output: Option<&std::path::Path>,
) -> i32 {
    let c = match crate::collection::Collection::load(collection) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return exit::COLLECTION;
        }
    };
    let exported = match super::postman_out::export(&c, envs) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::COLLECTION;
        }
    };
    let dir = output
        .and_then(|o| o.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let text = serde_json::to_string_pretty(&exported.collection).unwrap_or_default();
    let write = |path: &std::path::Path, text: &str| -> Result<(), String> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    match output {
        Some(o) => {
            if let Err(e) = write(o, &text) {
                eprintln!("error: {e}");
                return exit::COLLECTION;
            }
        }
        None => println!("{text}"),
    }
    let mut report = exported.report;
    for (name, env) in &exported.environments {
        let path = dir.join(format!("{name}.postman_environment.json"));
        if let Err(e) = write(
            &path,
            &serde_json::to_string_pretty(env).unwrap_or_default(),
        ) {
            eprintln!("error: {e}");
            return exit::COLLECTION;
        }
        report.notes.push(format!(
            "environment `{name}` written to {}",
            path.display()
        ));
    }
    eprint!("{}", report.render());
    if report.left_out.is_empty() {
        exit::OK
    } else {
        exit::ASSERT
    }
}

/// `export curl`: each request rendered in the current scope; a request that cannot be rendered
/// is named on stderr and makes the exit code 2.
fn export_curl(
    collection: &std::path::Path,
    only: Option<&str>,
    reveal: bool,
    opts: &crate::session::SendOpts,
) -> i32 {
    let (runner, _mock) = match crate::session::open_runner(collection, opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let names: Vec<String> = match only {
        Some(n) if runner.collection.requests.contains_key(n) => vec![n.to_string()],
        Some(n) => {
            eprintln!(
                "error: request `{n}` is not in the collection{}",
                crate::collection::suggest(n, runner.collection.requests.keys())
            );
            return exit::COLLECTION;
        }
        None => runner.collection.requests.keys().cloned().collect(),
    };
    let mut code = exit::OK;
    let several = names.len() > 1;
    for name in names {
        match runner.render(&name) {
            Ok(r) => {
                let line = super::curl::to_curl(&r);
                let line = if reveal {
                    line
                } else {
                    runner.redactor().mask(&line)
                };
                if several {
                    println!("# {name}");
                }
                println!("{line}");
            }
            Err(fail) => {
                let why = fail
                    .failure
                    .map(|f| f.message)
                    .unwrap_or_else(|| "cannot be rendered".into());
                eprintln!("# {name}: not exported: {}", runner.redactor().mask(&why));
                code = exit::COLLECTION;
            }
        }
    }
    code
}
