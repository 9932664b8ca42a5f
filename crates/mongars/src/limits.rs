//! The open-file limit, and how many connections it leaves room for.
//!
//! Every connection is a file descriptor; so are the database pool, the
//! model files, the log, Redis and outbound calls to backends. At start-up
//! the soft limit is raised to the hard one (the usual 1,024 soft limit is
//! far below what the kernel allows a process), and the connection cap is
//! what remains after a reserve for everything else. Past the cap the
//! listener answers 503 at once instead of failing to accept.

use mongars_config::Settings;

/// Descriptors kept back besides the database pool: model and data files,
/// logs, Redis, outbound calls to backends and research providers, and
/// the refusals the listener writes past the cap.
const RESERVE: u64 = 160;
/// The most connections a derived cap allows.
const MAX_DERIVED: u64 = 65_536;
/// The least a derived cap allows, however low the limit.
const MIN_DERIVED: u64 = 16;

/// The connection cap: `server.max_connections`, or derived from the
/// open-file limit (raised to its hard maximum first) when that is 0.
pub fn connection_cap(settings: &Settings) -> usize {
    let nofile = raise_open_files();
    let configured = u64::from(settings.server.max_connections);
    let reserve = RESERVE + u64::from(settings.database.max_connections);
    let cap = match (configured, nofile) {
        (0, Some(n)) => derived_cap(n, settings.database.max_connections),
        (0, None) => MAX_DERIVED,
        (n, Some(limit)) if n + reserve > limit => {
            tracing::warn!(
                max_connections = n,
                open_file_limit = limit,
                "server.max_connections leaves too few descriptors for the database and files"
            );
            n
        }
        (n, _) => n,
    };
    tracing::info!(max_connections = cap, open_file_limit = ?nofile, "connection cap");
    cap as usize
}

/// For `doctor`: the connections `serve` would allow, and why.
pub fn describe(settings: &Settings) -> String {
    #[cfg(unix)]
    let (soft, hard) = {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        (limit.current, limit.maximum)
    };
    #[cfg(not(unix))]
    let (soft, hard) = (None::<u64>, None::<u64>);
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
    let files = format!("open-file limit {} (hard {})", show(soft), show(hard));
    match settings.server.max_connections {
        0 => {
            let cap = derived_cap(
                hard.unwrap_or(MAX_DERIVED * 2),
                settings.database.max_connections,
            );
            format!("at most {cap} at once, derived from the {files}")
        }
        n => format!("at most {n} at once (server.max_connections); {files}"),
    }
}

/// The cap derived from an open-file limit of `nofile` descriptors, with
/// a pool of `db_connections`.
pub fn derived_cap(nofile: u64, db_connections: u32) -> u64 {
    let reserve = RESERVE + u64::from(db_connections);
    nofile
        .saturating_sub(reserve)
        .clamp(MIN_DERIVED, MAX_DERIVED)
}

/// Raise the soft open-file limit to the hard one; the soft limit in effect
/// after, if known.
fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
            && maximum > current
        {
            let raised = Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => return Some(maximum),
                Err(e) => tracing::debug!(error = %e, "could not raise the open-file limit"),
            }
        }
        // `None` means unlimited.
        Some(limit.current.unwrap_or(MAX_DERIVED * 2))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
