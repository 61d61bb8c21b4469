//! The `mongomon` binary: parse the command line, hand over to [`mongomon::app`].

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the agent allocates and frees many
/// small strings per reply (BSON keys), which fragments glibc's arena into a
/// third of the RSS and costs a third of the CPU (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = mongomon::cli::Cli::parse();
    match mongomon::cmd::main(cli) {
        Ok(code) => code,
        Err(e) => {
            // Through the one redaction, in case a library's error quotes
            // an address with credentials.
            let text = mongomon::redact::redact_text(&format!("{e:#}"));
            eprintln!("mongomon: {}", mongomon::redact::printable(&text));
            ExitCode::from(2)
        }
    }
}
