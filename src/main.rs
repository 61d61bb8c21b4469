//! The `mongomon` binary: parse the command line, hand over to [`mongomon::app`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mongomon::cli::Cli::parse();
    match mongomon::app::main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mongomon: {e:#}");
            ExitCode::from(2)
        }
    }
}
