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
    /// Manage accounts in the database.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the installation: settings, data folder, database, signing key,
    /// admin accounts and the hardware profile. Exits 1 when something is wrong.
    Doctor,
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
pub enum ConfigCommand {
    /// Print the effective settings as TOML, secrets shown as [REDACTED].
    Show,
}
