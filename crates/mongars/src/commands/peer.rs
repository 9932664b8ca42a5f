//! `mongars peer identity|add|list|remove`: this node's id and the peer
//! list from the command line. The list lives in the database, so every
//! replica and running server sees a change at its next load exchange.

use crate::cli::PeerCommand;
use mongars_config::Settings;
use mongars_core::domain::{PeerRecord, parse_fingerprint, parse_peer_url};
use mongars_core::ports::PeerRepository;
use mongars_peer::NodeIdentity;
use mongars_store::SqlPeerRepository;

pub async fn run(cmd: PeerCommand, settings: Settings) -> anyhow::Result<i32> {
    if let PeerCommand::Identity { rotate } = cmd {
        let id = if rotate {
            anyhow::ensure!(
                settings.peers.cert_file.as_os_str().is_empty(),
                "peers.cert_file is set: this node's certificate comes from the installation's CA; \
                 have it issue a new one"
            );
            NodeIdentity::rotate(&settings.data_dir).map_err(anyhow::Error::msg)?
        } else {
            crate::wiring::peers::identity(&settings)?
        };
        println!("{}", id.fingerprint);
        eprintln!("certificate: {}", id.cert_path.display());
        if rotate {
            eprintln!(
                "a new id: register it on every peer (`mongars peer add URL FINGERPRINT`), \
                 then restart this node"
            );
        }
        return Ok(0);
    }
    let db = crate::wiring::database::open_database(&settings).await?;
    let repo = SqlPeerRepository::new(db.clone());
    match cmd {
        PeerCommand::Identity { .. } => unreachable!("answered above"),
        PeerCommand::Add { url, fingerprint } => {
            let record = PeerRecord {
                url: parse_peer_url(&url)?,
                fingerprint: parse_fingerprint(&fingerprint)?,
                created_at: crate::wiring::system_clock().now(),
            };
            let own = crate::wiring::peers::identity(&settings)?;
            anyhow::ensure!(
                record.fingerprint != own.fingerprint,
                "that is this node's own fingerprint"
            );
            let r = repo.upsert(&record).await?;
            println!("peer {} registered ({})", r.url, r.fingerprint);
        }
        PeerCommand::List => {
            let all = repo.list().await?;
            if all.is_empty() {
                println!("no peers: `mongars peer add URL FINGERPRINT` registers one");
            }
            for p in all {
                println!(
                    "{}  {}  since {}",
                    p.url,
                    p.fingerprint,
                    p.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        PeerCommand::Remove { url } => {
            let url = parse_peer_url(&url)?;
            if !repo.remove(&url).await? {
                eprintln!("no peer {url}");
                db.close().await;
                return Ok(1);
            }
            println!("peer {url} removed");
        }
    }
    db.close().await;
    Ok(0)
}
