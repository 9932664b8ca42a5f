//! A small network of test hosts on one machine: network namespaces joined
//! by a bridge, as machines on one LAN. The bridge's address, in the root
//! namespace, is where the shared parts (PostgreSQL, Redis) listen; each
//! host is a namespace with an address of its own, where a replica runs.
//! What a host sends to a port can be dropped (a partition: nothing moves,
//! nothing closes) or refused (connections reset, new ones refused), with
//! nftables inside that host's namespace only. Everything is removed when
//! the [`Lan`] is dropped. Needs root, iproute2 and nftables.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

/// What a host's packets to one port meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Pass,
    /// Dropped without a word: connections hang until their timeouts.
    Drop,
    /// Answered with a reset: open connections break, new ones are refused.
    Reset,
}

pub struct Lan {
    bridge: String,
    /// The bridge's address: the parts listen here.
    pub gateway: String,
    pub hosts: Vec<Host>,
}

pub struct Host {
    pub ns: String,
    pub ip: String,
    gateway: String,
    cuts: Mutex<BTreeMap<u16, Cut>>,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lan {
    /// Whether this machine can make one (root, `ip` and `nft`).
    pub fn possible() -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let tool = |t: &str, version: &str| {
            Command::new(t)
                .arg(version)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        root && tool("ip", "-V") && tool("nft", "--version")
    }

    /// A bridge and `hosts` namespaces on it, named after this process.
    pub fn new(hosts: usize) -> Lan {
        let k = std::process::id() % 200 + 20;
        let bridge = format!("mgl{k}");
        let gateway = format!("10.213.{k}.1");
        // Left over from a killed run with the same number.
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        run(&["ip", "link", "add", &bridge, "type", "bridge"]);
        let mut lan = Lan {
            bridge: bridge.clone(),
            gateway: gateway.clone(),
            hosts: Vec::new(),
        };
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            &bridge,
        ]);
        run(&["ip", "link", "set", &bridge, "up"]);
        for i in 0..hosts {
            let ns = format!("mgl{k}-{i}");
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            run(&["ip", "netns", "add", &ns]);
            let outside = format!("mgl{k}h{i}");
            let inside = format!("mgl{k}n{i}");
            run(&[
                "ip", "link", "add", &outside, "type", "veth", "peer", "name", &inside, "netns",
                &ns,
            ]);
            run(&["ip", "link", "set", &outside, "master", &bridge]);
            run(&["ip", "link", "set", &outside, "up"]);
            let ip = format!("10.213.{k}.{}", 10 + i);
            let exec = |args: &[&str]| {
                let mut all = vec!["ip", "netns", "exec", ns.as_str()];
                all.extend_from_slice(args);
                run(&all);
            };
            exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", &inside]);
            exec(&["ip", "link", "set", &inside, "up"]);
            exec(&["ip", "link", "set", "lo", "up"]);
            exec(&["nft", "add", "table", "inet", "faults"]);
            exec(&[
                "nft",
                "add",
                "chain",
                "inet",
                "faults",
                "out",
                "{ type filter hook output priority 0; }",
            ]);
            lan.hosts.push(Host {
                ns,
                ip,
                gateway: gateway.clone(),
                cuts: Mutex::new(BTreeMap::new()),
            });
        }
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).output();
            let _ = std::fs::remove_file(h.rules_file());
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

impl Host {
    fn rules_file(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}.nft", self.ns))
    }

    /// The words that run a program in this host: `ip netns exec NS`.
    pub fn wrapper(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.ns]
    }

    /// From now on, what this host sends to the gateway's `port` meets `how`.
    pub fn cut(&self, port: u16, how: Cut) {
        let mut cuts = self.cuts.lock().unwrap();
        cuts.insert(port, how);
        let mut rules = String::from("flush chain inet faults out\n");
        for (port, how) in cuts.iter() {
            let verdict = match how {
                Cut::Pass => continue,
                Cut::Drop => "drop",
                Cut::Reset => "reject with tcp reset",
            };
            rules.push_str(&format!(
                "add rule inet faults out ip daddr {} tcp dport {port} {verdict}\n",
                self.gateway
            ));
        }
        let file = self.rules_file();
        std::fs::write(&file, rules).unwrap();
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "nft",
            "-f",
            file.to_str().unwrap(),
        ]);
    }
}
