//! Entry point: parse the command line, load settings once, run the command.

use clap::Parser;
use mongars::cli::{Cli, Command, ConfigCommand};
use mongars_config::{LoadOptions, load};
use std::process::ExitCode;

fn main() -> ExitCode {
    mongars_net::install_crypto();
    let cli = Cli::parse();
    let mut settings = match LoadOptions::from_process(cli.config.clone()).and_then(|o| load(&o)) {
        Ok(s) => s,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    // Before any thread exists: the embedder's compute threads and the C
    // heap's arenas follow the CPUs this process may use (cgroup quota
    // included).
    let hardware = mongars::hardware::HardwareProfile::detect();
    let compute_threads = mongars::hardware::compute::pin(hardware.usable_cpus());
    let heap_arenas = mongars::hardware::heap::limit(hardware.usable_cpus());
    let heap_pinned = mongars::hardware::heap::pin_thresholds();
    // `config show` prints only the settings; everything else logs.
    if !matches!(cli.command, Command::Config(ConfigCommand::Show))
        && let Err(e) = mongars::telemetry::init(&settings.logging)
    {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    tracing::debug!(
        compute_threads,
        ?heap_arenas,
        heap_pinned,
        "embedder compute threads, heap arenas, heap thresholds pinned"
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(mongars::hardware::tuning::worker_threads(
            &settings, &hardware,
        ))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Secrets from Vault, when configured, before any command uses them.
    if let Err(e) = runtime.block_on(mongars::vault::apply(&mut settings)) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match runtime.block_on(mongars::commands::run(cli.command, settings)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
