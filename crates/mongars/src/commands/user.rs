//! `mongars user ...` and `mongars key ...`: accounts and their API keys,
//! managed on the database directly.

use crate::cli::{KeyCommand, UserCommand};
use anyhow::{Context, bail};
use mongars_config::Settings;
use mongars_core::auth::AuthService;
use mongars_core::domain::{Password, Role, Username};
use std::io::{BufRead, IsTerminal};

pub async fn run(cmd: UserCommand, settings: Settings) -> anyhow::Result<()> {
    let auth = open(&settings).await?;
    match cmd {
        UserCommand::Add { username, admin } => {
            let username = Username::parse(&username)?;
            let password = read_new_password(&format!("Password for {username}"))?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = auth.create_user(username, &password, role).await?;
            println!("created {} ({})", user.username, user.role.as_str());
        }
        UserCommand::List => {
            let users = auth.list_users().await?;
            println!("{:<24} {:<6} {:<9} LAST LOGIN", "USERNAME", "ROLE", "STATE");
            for u in users {
                let last = u.last_login_at.map_or("never".to_string(), |t| {
                    t.format("%Y-%m-%d %H:%M UTC").to_string()
                });
                let state = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{:<24} {:<6} {:<9} {last}",
                    u.username,
                    u.role.as_str(),
                    state
                );
            }
        }
        UserCommand::Passwd { username } => {
            let username = Username::parse(&username)?;
            auth.find(&username).await?;
            let password = read_new_password(&format!("New password for {username}"))?;
            auth.set_password(&username, &password).await?;
            println!("password changed for {username}; older tokens no longer work");
        }
        UserCommand::Disable { username } => {
            let u = auth
                .set_disabled(&Username::parse(&username)?, true)
                .await?;
            println!("disabled {}; its tokens no longer work", u.username);
        }
        UserCommand::Enable { username } => {
            let u = auth
                .set_disabled(&Username::parse(&username)?, false)
                .await?;
            println!("enabled {}", u.username);
        }
    }
    Ok(())
}

/// `mongars key ...`: API keys, on the database directly.
pub async fn keys(cmd: KeyCommand, settings: Settings) -> anyhow::Result<()> {
    let auth = open(&settings).await?;
    match cmd {
        KeyCommand::Add {
            username,
            name,
            expires_in_days,
        } => {
            let username = Username::parse(&username)?;
            let new = auth
                .create_key_for(&username, &name, expires_in_days)
                .await?;
            let until = new.key.expires_at.map_or("never expires".to_string(), |t| {
                t.format("expires %Y-%m-%d %H:%M UTC").to_string()
            });
            eprintln!(
                "key {} ({}) for {username}, {until}; shown this once:",
                new.key.id, new.key.name
            );
            println!("{}", new.secret);
        }
        KeyCommand::List { username } => {
            let owner = auth.principal_of(&Username::parse(&username)?).await?;
            let keys = auth.list_keys(owner.id).await?;
            println!(
                "{:<36} {:<20} {:<11} {:<17} {:<17} EXPIRES",
                "ID", "NAME", "PREFIX", "CREATED", "LAST USED"
            );
            let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
                t.map_or(none.to_string(), |t| t.format("%Y-%m-%d %H:%M").to_string())
            };
            for k in keys {
                println!(
                    "{:<36} {:<20} {:<11} {:<17} {:<17} {}",
                    k.id,
                    k.name,
                    k.prefix,
                    when(Some(k.created_at), ""),
                    when(k.last_used_at, "never"),
                    when(k.expires_at, "never")
                );
            }
        }
        KeyCommand::Revoke { username, id } => {
            let owner = auth.principal_of(&Username::parse(&username)?).await?;
            auth.revoke_key(owner.id, &id).await?;
            println!("revoked key {id} of {}", owner.username);
        }
    }
    Ok(())
}

/// The auth service on the configured database. The CLI never issues tokens,
/// so it signs with a throw-away key instead of touching the real one.
async fn open(settings: &Settings) -> anyhow::Result<AuthService> {
    let db = crate::wiring::database::open_database(settings).await?;
    if settings.database.migrate_on_start {
        db.migrate().await?;
    } else if !db.migration_status().await?.is_current() {
        bail!("the database schema is not current: run `mongars migrate` first");
    }
    let mut ephemeral = [0u8; 32];
    getrandom::fill(&mut ephemeral).context("no system randomness")?;
    crate::wiring::auth::auth_service(settings, &db, &ephemeral, crate::wiring::system_clock())
        .await
}

fn read_new_password(prompt: &str) -> anyhow::Result<Password> {
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        let again = rpassword::prompt_password("Repeat it: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Ok(Password::new_secret(&raw, "password")?)
}
