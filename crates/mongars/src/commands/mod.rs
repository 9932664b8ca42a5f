//! One module per subcommand.

mod adapter;
#[cfg(feature = "bench")]
pub mod bench;
mod doctor;
mod models;
mod peer;
mod probe;
mod serve;
mod train;
mod user;

use crate::cli::{Command, ConfigCommand};
#[cfg(feature = "bench")]
use crate::commands::bench::BenchCommand;
use mongars_config::Settings;

pub async fn run(command: Command, settings: Settings) -> anyhow::Result<i32> {
    match command {
        Command::Serve => serve::run(settings).await.map(|_| 0),
        Command::Migrate { check } => migrate(settings, check).await,
        Command::User(cmd) => user::run(cmd, settings).await.map(|_| 0),
        Command::Key(cmd) => user::keys(cmd, settings).await.map(|_| 0),
        Command::Config(ConfigCommand::Show) => {
            print!("{}", settings.to_redacted_toml());
            Ok(0)
        }
        Command::Doctor => doctor::run(settings).await,
        Command::Probe {
            ready,
            timeout_secs,
        } => probe::run(&settings, ready, timeout_secs).await,
        #[cfg(feature = "bench")]
        Command::Bench(cmd) => match cmd {
            BenchCommand::Auth(args) => bench::auth(settings, args).await,
            BenchCommand::Generate(args) => bench::generate(settings, args).await,
            BenchCommand::Router(args) => bench::router(settings, args).await,
            BenchCommand::Peers(args) => bench::peers(settings, args).await,
            BenchCommand::Memory(args) => bench::memory(settings, args).await,
            BenchCommand::Realtime(args) => bench::realtime(settings, args).await,
            BenchCommand::Chat(args) => bench::chat(settings, args).await,
            BenchCommand::Train(args) => bench::train(settings, args).await,
            BenchCommand::Overload(args) => bench::overload(settings, args).await,
            BenchCommand::Soak(args) => bench::soak(settings, args).await,
            BenchCommand::FakeOpenai => bench::fake_openai().await,
        },
        Command::Models(cmd) => models::run(cmd, settings).await,
        Command::Train(cmd) => train::run(cmd, settings).await,
        Command::Adapter(cmd) => adapter::run(cmd, settings).await,
        Command::Peer(cmd) => peer::run(cmd, settings).await,
    }
}

async fn migrate(settings: Settings, check: bool) -> anyhow::Result<i32> {
    let db = crate::wiring::database::open_database(&settings).await?;
    let status = db.migration_status().await?;
    if check {
        for (version, name) in &status.pending {
            println!("pending: {version} {name}");
        }
        println!(
            "{} applied, {} pending ({})",
            status.applied.len(),
            status.pending.len(),
            db.engine()
        );
        return Ok(if status.is_current() { 0 } else { 1 });
    }
    let applied = db.migrate().await?;
    if applied.is_empty() {
        println!("database is up to date ({})", db.engine());
    } else {
        println!("applied migrations {applied:?} ({})", db.engine());
    }
    db.close().await;
    Ok(0)
}
