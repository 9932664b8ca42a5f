//! Personal data in text: e-mail addresses, phone numbers, IBANs (checked
//! with their mod-97 digits), payment card numbers (Luhn), IP addresses,
//! street addresses and the names a user told the memory. Each span found
//! is replaced by a typed placeholder (`[EMAIL]`, `[PHONE]`, ...). The
//! scanners are written by hand over characters, with checksums where the
//! data has them, so that order numbers and dates are not taken for cards.

use serde::Serialize;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Iban,
    Card,
    Ip,
    Phone,
    Address,
    Name,
}

impl PiiKind {
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::Card => "[CARD]",
            PiiKind::Ip => "[IP]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Address => "[ADDRESS]",
            PiiKind::Name => "[NAME]",
        }
    }
}

/// A span of `text` (byte offsets) holding personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// `text` with every finding replaced, and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    pub found: Vec<PiiKind>,
}

impl Redacted {
    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }
}

/// Every finding in `text`, in order, none overlapping (the more specific
/// kind wins: an e-mail address is not also a name).
pub fn scan(text: &str, names: &[&str]) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    let add = |spans: Vec<(usize, usize)>, kind: PiiKind, found: &mut Vec<Finding>| {
        for (start, end) in spans {
            if !found.iter().any(|f| start < f.end && f.start < end) {
                found.push(Finding { kind, start, end });
            }
        }
    };
    add(emails(text), PiiKind::Email, &mut found);
    add(ibans(text), PiiKind::Iban, &mut found);
    add(cards(text), PiiKind::Card, &mut found);
    add(ips(text), PiiKind::Ip, &mut found);
    add(phones(text), PiiKind::Phone, &mut found);
    add(addresses(text), PiiKind::Address, &mut found);
    add(name_spans(text, names), PiiKind::Name, &mut found);
    found.sort_by_key(|f| f.start);
    found
}

/// `text` with its personal data replaced by placeholders.
pub fn redact(text: &str, names: &[&str]) -> Redacted {
    let found = scan(text, names);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in &found {
        out.push_str(&text[at..f.start]);
        out.push_str(f.kind.placeholder());
        at = f.end;
    }
    out.push_str(&text[at..]);
    Redacted {
        text: out,
        found: found.iter().map(|f| f.kind).collect(),
    }
}

/// Maximal runs of bytes satisfying `part`, as spans.
fn runs(text: &str, part: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if part(b[i]) {
            let start = i;
            while i < b.len() && part(b[i]) {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

fn emails(text: &str) -> Vec<(usize, usize)> {
    let word = |c: u8| c.is_ascii_alphanumeric() || b"._%+-@".contains(&c);
    runs(text, word)
        .into_iter()
        .filter_map(|(s, e)| {
            let t = text[s..e].trim_end_matches('.');
            let (local, domain) = t.split_once('@')?;
            let tld = domain.rsplit_once('.')?.1;
            let ok = !local.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && tld.len() >= 2
                && tld.bytes().all(|c| c.is_ascii_alphabetic());
            ok.then_some((s, s + t.len()))
        })
        .collect()
}

/// Spans of digits with single separators (space, dash, dot) between
/// groups, and their digits.
fn digit_groups(text: &str, separators: &[u8]) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = String::new();
        let mut end = i;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                digits.push(b[i] as char);
                i += 1;
                end = i;
            } else if separators.contains(&b[i]) && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
                i += 1;
            } else if separators.contains(&b[i])
                && i + 2 < b.len()
                && separators.contains(&b[i + 1])
                && b[i + 2].is_ascii_digit()
            {
                i += 2;
            } else {
                break;
            }
        }
        if !(end < b.len() && b[end].is_ascii_alphabetic()) {
            out.push((start, end, digits));
        }
        i = end.max(start + 1);
    }
    out
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn cards(text: &str) -> Vec<(usize, usize)> {
    digit_groups(text, b" -")
        .into_iter()
        .filter(|(_, _, d)| (13..=19).contains(&d.len()) && luhn(d))
        .map(|(s, e, _)| (s, e))
        .collect()
}

fn phones(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    digit_groups(text, b" -.()")
        .into_iter()
        .filter_map(|(s, e, d)| {
            // A leading "+" or "(" belongs to the number.
            let start = match s.checked_sub(1).map(|i| b[i]) {
                Some(b'+') | Some(b'(') => s - 1,
                _ => s,
            };
            let international = b[start] == b'+';
            let ok = (9..=15).contains(&d.len())
                && (international || d.starts_with('0') || d.len() >= 10);
            ok.then_some((start, e))
        })
        .collect()
}

fn ibans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(4) {
        let starts = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts {
            continue;
        }
        let mut chars = String::new();
        let mut end = i;
        let mut j = i;
        while j < b.len() && chars.len() < 34 {
            if b[j].is_ascii_alphanumeric() {
                chars.push(b[j].to_ascii_uppercase() as char);
                j += 1;
                end = j;
            } else if b[j] == b' ' && j + 1 < b.len() && b[j + 1].is_ascii_alphanumeric() {
                j += 1;
            } else {
                break;
            }
        }
        // Trailing words are not part of it: shrink to the longest valid.
        while chars.len() >= 15 {
            if iban_valid(&chars) {
                out.push((i, end));
                break;
            }
            chars.pop();
            end -= 1;
            while end > i && b[end - 1] == b' ' {
                end -= 1;
            }
        }
    }
    out
}

fn iban_valid(s: &str) -> bool {
    if !s.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let moved = format!("{}{}", &s[4..], &s[..4]);
    let mut rem = 0u32;
    for c in moved.bytes() {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ips(text: &str) -> Vec<(usize, usize)> {
    let v4 = runs(text, |c| c.is_ascii_digit() || c == b'.')
        .into_iter()
        .filter_map(|(s, e)| {
            let t = text[s..e].trim_end_matches('.');
            let parts: Vec<&str> = t.split('.').collect();
            let ok = parts.len() == 4
                && parts.iter().all(|p| {
                    !p.is_empty() && p.len() <= 3 && p.parse::<u16>().is_ok_and(|n| n <= 255)
                });
            ok.then_some((s, s + t.len()))
        });
    let v6 = runs(text, |c| c.is_ascii_hexdigit() || c == b':')
        .into_iter()
        .filter(|&(s, e)| {
            let t = &text[s..e];
            let groups = t.split(':').filter(|g| !g.is_empty()).count();
            t.matches(':').count() >= 2
                && (t.contains("::") || groups >= 6)
                && groups >= 2
                && t.split(':').all(|g| g.len() <= 4)
        });
    v4.chain(v6).collect()
}

const STREET_WORDS: [&str; 24] = [
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "way",
    "court",
    "ct",
    "place",
    "pl",
    "square",
    "rue",
    "rua",
    "strasse",
    "straße",
    "calle",
    "via",
];

/// "221 Baker Street", "12 rue de la Paix", "Rua Augusta 27": a house
/// number and a street word within a few words of each other, with the
/// street's name.
fn addresses(text: &str) -> Vec<(usize, usize)> {
    let words = runs(text, |c| c.is_ascii_alphanumeric() || c >= 0x80);
    let word = |i: usize| &text[words[i].0..words[i].1];
    let is_street = |i: usize| STREET_WORDS.contains(&word(i).to_lowercase().as_str());
    let is_number = |i: usize| {
        let w = word(i);
        let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        !digits.is_empty()
            && digits.len() <= 5
            && digits.bytes().all(|c| c.is_ascii_digit())
            && w.len() - digits.len() <= 1
    };
    let is_name = |i: usize| {
        let w = word(i);
        w.chars().next().is_some_and(char::is_uppercase)
            || ["de", "la", "du", "des", "do", "da"].contains(&w)
    };
    let mut out = Vec::new();
    for i in 0..words.len() {
        if is_number(i) {
            // "221 Baker Street": names, then the street word.
            let mut j = i + 1;
            while j < words.len() && j <= i + 4 && is_name(j) && !is_street(j) {
                j += 1;
            }
            if j < words.len() && is_street(j) && j > i + 1 {
                out.push((words[i].0, words[j].1));
                continue;
            }
            // "12 rue de la Paix": the street word, then names.
            if i + 2 < words.len() && is_street(i + 1) && is_name(i + 2) {
                let mut end = i + 2;
                while end + 1 < words.len() && end < i + 5 && is_name(end + 1) {
                    end += 1;
                }
                out.push((words[i].0, words[end].1));
            }
        } else if is_street(i) && word(i).chars().next().is_some_and(char::is_uppercase) {
            // "Rua Augusta 27": the street word, names, the number.
            let mut j = i + 1;
            while j < words.len() && j <= i + 4 && is_name(j) {
                j += 1;
            }
            if j > i + 1 && j < words.len() && is_number(j) {
                out.push((words[i].0, words[j].1));
            }
        }
    }
    out
}

fn name_spans(text: &str, names: &[&str]) -> Vec<(usize, usize)> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        // Lower-casing changed byte lengths: match on the text as written.
        return names
            .iter()
            .filter(|n| n.chars().count() >= 2)
            .flat_map(|n| whole_words(text, n))
            .collect();
    }
    names
        .iter()
        .filter(|n| n.chars().count() >= 2)
        .flat_map(|n| whole_words(&lower, &n.to_lowercase()))
        .collect()
}

fn whole_words(text: &str, needle: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    text.match_indices(needle)
        .map(|(s, m)| (s, s + m.len()))
        .filter(|&(s, e)| {
            (s == 0 || !b[s - 1].is_ascii_alphanumeric())
                && (e == b.len() || !b[e].is_ascii_alphanumeric())
        })
        .collect()
}

#[cfg(test)]
mod tests;
