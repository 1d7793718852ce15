//! The `baton` binary. This first cut parses the operators' command line of
//! the API contract; the HTTP server, relay and projection runner arrive
//! with the pipeline, projections and API issues, and until then `serve`
//! says so plainly instead of pretending.

use clap::{Parser, Subcommand};

/// Baton: a live transfer-of-care tracker for an integrated care system.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API, web pages, outbox relay and projection runner.
    Serve,
    /// Check an NHS number by Modulus 11 (a small aid for staff and testers).
    CheckNhsNumber {
        /// The number, as `9912003888` or `991 200 3888`.
        number: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve => anyhow::bail!(
            "`baton serve` is not built yet: the domain (spells, referrals, their rules) is in \
             place; the event store, API and pages arrive with the following issues"
        ),
        Command::CheckNhsNumber { number } => match domain::values::NhsNumber::parse(&number) {
            Ok(valid) => {
                eprintln!("{} is a valid NHS number", valid.spaced());
                Ok(())
            }
            Err(reason) => anyhow::bail!("not a valid NHS number: {reason}"),
        },
    }
}
