//! robots.txt (RFC 9309): fetched once per site and cached for an hour. The
//! group for our user agent applies, else the `*` group; the longest
//! matching rule wins, `Allow` on ties. A missing file (4xx) allows
//! everything; an unreachable one (5xx, timeout) disallows everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CACHE_FOR: Duration = Duration::from_secs(3600);
const MAX_ROBOTS_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// (allow, path prefix with `*` and `$` as in RFC 9309)
    rules: Vec<(bool, String)>,
    deny_all: bool,
}

impl Rules {
    pub fn allow_all() -> Self {
        Self::default()
    }

    pub fn deny_all() -> Self {
        Self {
            rules: Vec::new(),
            deny_all: true,
        }
    }

    /// Parse a robots.txt for `agent` (the product token of our user agent).
    pub fn parse(body: &str, agent: &str) -> Self {
        let agent = agent.to_ascii_lowercase();
        let mut mine: Vec<(bool, String)> = Vec::new();
        let mut star: Vec<(bool, String)> = Vec::new();
        let mut found_mine = false;
        let mut group_agents: Vec<String> = Vec::new();
        let mut in_rules = false;
        for line in body.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => {
                    if in_rules {
                        group_agents.clear();
                        in_rules = false;
                    }
                    group_agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if value.is_empty() {
                        continue;
                    }
                    let rule = (key == "allow", value.to_string());
                    if group_agents
                        .iter()
                        .any(|a| a != "*" && agent.starts_with(a.as_str()))
                    {
                        found_mine = true;
                        mine.push(rule);
                    } else if group_agents.iter().any(|a| a == "*") {
                        star.push(rule);
                    }
                }
                _ => {}
            }
        }
        Self {
            rules: if found_mine { mine } else { star },
            deny_all: false,
        }
    }

    pub fn allows(&self, path: &str) -> bool {
        if self.deny_all {
            return false;
        }
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                if best.is_none_or(|(l, a)| len > l || (len == l && *allow && !a)) {
                    best = Some((len, *allow));
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// RFC 9309 matching: prefix, `*` any run, `$` end.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if let Some(found) = path[at..].find(part) {
            at += found + part.len();
        } else {
            return false;
        }
    }
    if anchored {
        // The last part must end the path.
        parts.last().is_some_and(|last| path.ends_with(last))
            && (parts.len() > 1 || at == path.len())
    } else {
        true
    }
}

/// robots.txt of the sites visited, cached.
pub struct Robots {
    client: reqwest::Client,
    agent: String,
    cache: Mutex<HashMap<String, (Rules, Instant)>>,
}

impl Robots {
    pub fn new(client: reqwest::Client, user_agent: &str) -> Self {
        let agent = user_agent
            .split('/')
            .next()
            .unwrap_or(user_agent)
            .trim()
            .to_string();
        Self {
            client,
            agent,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// May `url` (an `http://` URL) be fetched?
    pub async fn allowed(&self, origin: &str, path: &str) -> bool {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(origin)
                .filter(|(_, at)| at.elapsed() < CACHE_FOR)
                .map(|(r, _)| r.clone())
        };
        let rules = match cached {
            Some(r) => r,
            None => {
                let r = self.fetch(origin).await;
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(origin.to_string(), (r.clone(), Instant::now()));
                r
            }
        };
        rules.allows(path)
    }

    async fn fetch(&self, origin: &str) -> Rules {
        let resp = match self.client.get(format!("{origin}/robots.txt")).send().await {
            Ok(r) => r,
            Err(_) => return Rules::deny_all(),
        };
        let status = resp.status();
        if status.is_client_error() {
            return Rules::allow_all();
        }
        if !status.is_success() {
            return Rules::deny_all();
        }
        match resp.bytes().await {
            Ok(b) => {
                let b = &b[..b.len().min(MAX_ROBOTS_BYTES)];
                Rules::parse(&String::from_utf8_lossy(b), &self.agent)
            }
            Err(_) => Rules::deny_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_longest_match_and_wildcards() {
        let txt = "User-agent: *\nDisallow: /private\nAllow: /private/ok\n\n\
                   User-agent: monGARS-research\nDisallow: /no-bots\nDisallow: /*.pdf$\n";
        let mine = Rules::parse(txt, "monGARS-research");
        assert!(!mine.allows("/no-bots/page"));
        assert!(mine.allows("/private/x"), "our group replaces the * group");
        assert!(!mine.allows("/docs/a.pdf"));
        assert!(mine.allows("/docs/a.pdf.html"));
        let other = Rules::parse(txt, "otherbot");
        assert!(!other.allows("/private/x"));
        assert!(other.allows("/private/ok/1"));
        assert!(other.allows("/"));
        assert!(Rules::parse("", "x").allows("/any"));
        assert!(!Rules::deny_all().allows("/"));
        let all = Rules::parse("User-agent: *\nDisallow: /\n", "monGARS-research");
        assert!(!all.allows("/page"));
    }
}
