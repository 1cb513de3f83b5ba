//! The `deployer` binary: parses the command line and runs it.

use clap::Parser;

use deployer::cli::Cli;
use deployer::error::EXIT_OK;

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deployer: cannot start the async runtime: {e}");
            std::process::exit(deployer::error::EXIT_FAILED);
        }
    };
    let code = match runtime.block_on(deployer::commands::run(cli.command)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("deployer: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
