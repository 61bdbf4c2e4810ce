//! `vcci`: the command line. Parsing and dispatch only; each subcommand calls one function.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod output;
mod progress;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cmd::run(cli) {
        // One line on standard error, non-zero exit: scripts rely on both.
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("vcci: error: {msg}");
        std::process::exit(1);
    }
}
