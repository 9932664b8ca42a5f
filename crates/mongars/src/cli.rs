//! Command-line interface.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// monGARS: a privacy-first, self-hosted AI assistant server.
///
/// Settings come from the built-in defaults, then the file given with
/// --config (or MONGARS_CONFIG), then MONGARS_* environment variables
/// (MONGARS_SERVER__PORT=9000 sets server.port). `mongars config show`
/// prints the result.
#[derive(Debug, Parser)]
#[command(name = "mongars", version, about, long_about)]
pub struct Cli {
    /// Settings file (TOML) layered over the built-in defaults.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first unless
    /// database.migrate_on_start is false). Stops cleanly on SIGTERM or Ctrl-C.
    Serve,
    /// Apply pending database migrations, or report them with --check.
    Migrate {
        /// Only report: exit 1 when migrations are pending.
        #[arg(long)]
        check: bool,
    },
    /// Ask the server on this machine whether it is alive (`GET /healthz` on
    /// server.port over loopback): exit 0 when it answers 200, 1 otherwise.
    /// For container health checks, where no curl is installed.
    Probe {
        /// Ask `/ready` instead: the database, migrations and backends too.
        #[arg(long)]
        ready: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Manage accounts in the database.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage users' API keys (bearer credentials for tools and clients).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Inspect settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the installation: settings, data folder, database, signing key,
    /// admin accounts and the hardware profile. Exits 1 when something is wrong.
    Doctor,
    /// Measure this build: start-up time, memory and login throughput (for
    /// operators sizing a machine, and for developers). Built with the
    /// `bench` feature (`make bench`).
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
    /// The models of the active profile: list them, check they are present,
    /// or download them (Ollama pull, with progress).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Train LoRA adapters for the embedded model on this machine.
    #[command(subcommand)]
    Train(TrainCommand),
    /// The adapter registry: list, approve, activate, roll back. Running
    /// servers follow an activation or rollback within seconds.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// This node's identity among its peers, and the peer list. Running
    /// servers follow a change within one load exchange.
    #[command(subcommand)]
    Peer(PeerCommand),
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Print this node's id: the SHA-256 fingerprint of its key, which
    /// peers register. Made on first use in the data directory.
    Identity {
        /// Replace the key pair (a new id: register it on every peer
        /// again); the old files are kept with `.old`.
        #[arg(long)]
        rotate: bool,
    },
    /// Register a peer: the https URL of its peer listener and the
    /// fingerprint `mongars peer identity` prints on it.
    Add { url: String, fingerprint: String },
    /// The registered peers (their state and load: `GET /api/v1/peer/list`
    /// or the console's Peers tab).
    List,
    /// Forget a peer: no call to it and none accepted from it.
    Remove { url: String },
}

#[derive(Debug, Subcommand)]
pub enum AdapterCommand {
    /// Every adapter, newest first: id, version, status, figures.
    List,
    /// Let a candidate serve once activated.
    Approve { id: String },
    /// Mark an adapter as never to serve (not the active one).
    Reject { id: String },
    /// Serve new replies with an approved adapter.
    Activate { id: String },
    /// Back to the adapter active before the current one, or the bare model.
    Rollback,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Build a new dataset version from every ready sample of users who
    /// consent to training.
    Build,
    /// Every dataset version, newest first.
    List,
    /// Write a version's items as JSON lines (`{sample_id, split, prompt,
    /// response}`) to FILE, or to standard output.
    Export {
        id: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainObjective {
    Supervised,
    Mntp,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Train an adapter on a JSONL file of `{"prompt": ..., "response": ...}`
    /// samples (settings under `[training]`), evaluate it on a held-out
    /// share and on the shipped general set, and write `adapter.gguf` with
    /// `adapter.json` (hashes, figures, and whether it is a candidate) to
    /// the output folder. Progress every step; a checkpoint every 10 steps.
    Run {
        /// The samples, one JSON object per line.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "dataset",
            conflicts_with = "dataset"
        )]
        data: Option<PathBuf>,
        /// Train on a dataset version of the database instead (`latest` for
        /// the newest), as the server would, registering a passing adapter
        /// as a candidate.
        #[arg(long, value_name = "ID")]
        dataset: Option<String>,
        /// Output folder (default: DATA_DIR/training/run-<time>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Training budget in minutes (default: training.max_minutes).
        #[arg(long)]
        minutes: Option<f64>,
        /// Optimiser steps (default: training.steps).
        #[arg(long)]
        steps: Option<usize>,
        /// Continue the run whose checkpoint is in the output folder.
        #[arg(long, requires = "out")]
        resume: bool,
        /// `supervised`: a chat adapter trained on the responses. `mntp`
        /// (with --data): masked next-token prediction with bidirectional
        /// attention (LLM2Vec), an adapter for sentence embeddings from the
        /// generator, gated on masked perplexity; not a chat adapter.
        #[arg(long, value_enum, default_value_t = TrainObjective::Supervised)]
        objective: TrainObjective,
    },
    /// Dataset versions built from users' consented samples.
    #[command(subcommand)]
    Dataset(DatasetCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Each role's backends and models in failover order, with their health.
    List,
    /// Download missing models (Ollama pull; GGUF files are checked).
    /// Exits 1 when any role could not be provisioned.
    Pull {
        /// Only this role (general or coding); all roles by default.
        #[arg(long)]
        role: Option<String>,
        /// Download again even when present.
        #[arg(long)]
        force: bool,
    },
    /// Check that every model is present, downloading nothing. Exits 1 when
    /// one is missing or its backend cannot be reached.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is asked for twice on a terminal, or
    /// read as one line from standard input (`echo "$PW" | mongars user add bob`).
    Add {
        /// 1-150 letters, digits, '_' or '-'; unique regardless of case.
        username: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// List accounts with role, state and last login.
    List,
    /// Set a new password (read like `user add`); older tokens stop working.
    Passwd { username: String },
    /// Disable an account: it cannot log in and its tokens stop working.
    Disable { username: String },
    /// Enable a disabled account again.
    Enable { username: String },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a key for USER and print it (only this once). It acts as USER
    /// until revoked, expired, or USER is disabled or changes password.
    Add {
        username: String,
        /// What the key is for, to recognise it later.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it expires (1-3650); never by default.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// USER's usable keys: id, name, prefix, created, last used, expiry.
    List { username: String },
    /// Revoke one of USER's keys at once.
    Revoke { username: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings as TOML, secrets shown as [REDACTED].
    Show,
}
