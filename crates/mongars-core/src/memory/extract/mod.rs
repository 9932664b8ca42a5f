//! Durable facts about the user, found in their own words by rules: no model
//! call. Each rule turns a first-person statement ("my name is Ana", "I work
//! on the Orion project", "I don't like olives") into a third-person fact
//! with a slot saying what it is about. Facts of a single-valued slot (name,
//! project, city...) replace each other; the service decides, with
//! embeddings, whether a new fact restates an old one.

/// A fact found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Third-person statement, as stored and shown.
    pub text: String,
    /// What it is about ("name", "project", "likes:tea"...).
    pub slot: String,
    /// A newer value replaces the older one (a person has one name).
    pub single: bool,
}

type Render = fn(&str) -> String;

/// (lower-case prefix, slot, single-valued, how to phrase the value)
const RULES: &[(&str, &str, bool, Render)] = &[
    ("my name is ", "name", true, name),
    ("my name's ", "name", true, name),
    ("you can call me ", "name", true, name),
    ("people call me ", "name", true, name),
    ("call me ", "name", true, name),
    ("i'm called ", "name", true, name),
    ("i am called ", "name", true, name),
    ("je m'appelle ", "name", true, name),
    ("mon nom est ", "name", true, name),
    ("my current project is ", "project", true, project),
    ("my project is ", "project", true, project),
    ("i'm currently working on ", "project", true, project),
    ("i am currently working on ", "project", true, project),
    ("i'm working on ", "project", true, project),
    ("i am working on ", "project", true, project),
    ("i work on ", "project", true, project),
    ("i now work on ", "project", true, project),
    ("je travaille sur ", "project", true, project),
    ("i work at ", "employer", true, employer),
    ("i work for ", "employer", true, employer),
    ("i work as an ", "occupation", true, occupation),
    ("i work as a ", "occupation", true, occupation),
    ("i'm an ", "occupation", true, occupation),
    ("i'm a ", "occupation", true, occupation),
    ("i am an ", "occupation", true, occupation),
    ("i am a ", "occupation", true, occupation),
    ("i live in ", "location", true, location),
    ("i'm based in ", "location", true, location),
    ("i am based in ", "location", true, location),
    ("j'habite à ", "location", true, location),
    ("i'm from ", "origin", true, origin),
    ("i am from ", "origin", true, origin),
    ("i don't like ", "likes", false, dislikes),
    ("i do not like ", "likes", false, dislikes),
    ("i dislike ", "likes", false, dislikes),
    ("i hate ", "likes", false, dislikes),
    ("i really like ", "likes", false, likes),
    ("i really love ", "likes", false, likes),
    ("i like ", "likes", false, likes),
    ("i love ", "likes", false, likes),
    ("i enjoy ", "likes", false, likes),
    ("i prefer ", "likes", false, likes),
    ("j'aime ", "likes", false, likes),
    ("i have an ", "has", false, has),
    ("i have a ", "has", false, has),
    ("i've got a ", "has", false, has),
];

/// Words after "I'm a ..." that describe a mood, not a job.
const NOT_OCCUPATIONS: &[&str] = &[
    "bit", "little", "lot", "fan", "big", "huge", "tad", "fairly", "very", "really", "beginner",
];
/// Words that end a value: what follows is a new thought.
const VALUE_ENDS: &[&str] = &[
    " but ",
    " because ",
    " so ",
    " which ",
    " although ",
    " though ",
    " since ",
    " and i ",
    " and my ",
    " et je ",
    " mais ",
];
/// Time words trimmed from the end of a value.
const TRAILING: &[&str] = &[
    " by the way",
    " right now",
    " these days",
    " at the moment",
    " currently",
    " lately",
    " nowadays",
    " now",
    " at work",
    " actuellement",
];

/// The facts stated in `message`.
pub fn extract_facts(message: &str) -> Vec<Fact> {
    let mut out: Vec<Fact> = Vec::new();
    for clause in clauses(message) {
        let Some(fact) = from_clause(&clause) else {
            continue;
        };
        if !out
            .iter()
            .any(|f| f.slot == fact.slot && f.text == fact.text)
        {
            out.push(fact);
        }
    }
    out
}

/// Statements of the message: split at sentence ends and at "and" before a
/// new first-person clause; questions are dropped.
fn clauses(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in message.chars() {
        match c {
            '.' | '!' | ';' | '\n' => {
                out.push(std::mem::take(&mut current));
            }
            '?' => current.clear(),
            c => current.push(c),
        }
    }
    out.push(current);
    let mut split = Vec::new();
    for clause in out {
        let mut rest = clause.trim().to_string();
        loop {
            let lower = rest.to_lowercase();
            let cut = [
                " and i ",
                " and my ",
                ", and i ",
                ", i ",
                " et je ",
                " and call me ",
            ]
            .iter()
            .filter_map(|sep| lower.find(sep).map(|at| (at, sep.len())))
            .min();
            match cut {
                // Only cut where the text is plain ASCII-indexed the same way.
                Some((at, len)) if rest.is_char_boundary(at) && lower.len() == rest.len() => {
                    let head = rest[..at].trim().to_string();
                    let keep = len - " i ".len().min(len);
                    let tail = rest[at + keep..].trim_start_matches([',', ' ']).to_string();
                    let tail = tail
                        .strip_prefix("and ")
                        .map(str::to_string)
                        .unwrap_or(tail);
                    split.push(head);
                    rest = tail;
                }
                _ => {
                    split.push(rest);
                    break;
                }
            }
        }
    }
    split
        .into_iter()
        .map(|s| {
            s.trim()
                .trim_matches(|c: char| c == ',' || c == '"')
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

fn from_clause(clause: &str) -> Option<Fact> {
    let lower = clause.to_lowercase();
    // Lower-casing may change byte lengths outside ASCII; then match on the
    // lower-case text throughout.
    let source = if lower.len() == clause.len() {
        clause
    } else {
        &lower
    };
    let (start, lower) = strip_openers(&lower);
    let source = &source[start..];
    if let Some(f) = favourite(source, lower) {
        return Some(f);
    }
    for (prefix, slot, single, render) in RULES {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let value = clean_value(&source[source.len() - rest.len()..])?;
            let first = value.split_whitespace().next()?.to_lowercase();
            if *slot == "occupation" && NOT_OCCUPATIONS.contains(&first.as_str()) {
                return None;
            }
            if *slot == "name" && !value.chars().next()?.is_alphabetic() {
                return None;
            }
            let slot = if *slot == "likes" || *slot == "has" {
                format!("{slot}:{}", normalise(&value))
            } else {
                slot.to_string()
            };
            return Some(Fact {
                text: render(&value),
                slot,
                single: *single,
            });
        }
    }
    // "I'm Ana" / "I am Ana": a name only when it is one capitalised word.
    for prefix in ["i'm ", "i am "] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let value = source[source.len() - rest.len()..].trim();
            let mut chars = value.chars();
            if !value.contains(' ')
                && chars.next().is_some_and(char::is_uppercase)
                && chars.all(char::is_alphabetic)
            {
                return Some(Fact {
                    text: name(value),
                    slot: "name".into(),
                    single: true,
                });
            }
        }
    }
    None
}

/// Skip fillers before the statement ("well, ", "actually ", "also ").
fn strip_openers(lower: &str) -> (usize, &str) {
    let mut rest = lower;
    loop {
        let before = rest.len();
        for opener in [
            "well, ",
            "well ",
            "actually, ",
            "actually ",
            "also, ",
            "also ",
            "oh, ",
            "so ",
            "hi, ",
            "hello, ",
            "by the way, ",
            "btw, ",
            "and ",
        ] {
            if let Some(r) = rest.strip_prefix(opener) {
                rest = r;
            }
        }
        if rest.len() == before {
            break;
        }
    }
    (lower.len() - rest.len(), rest)
}

/// "my favourite colour is blue" and other "my X is Y".
fn favourite(source: &str, lower: &str) -> Option<Fact> {
    let rest = lower.strip_prefix("my ")?;
    let is = rest.find(" is ")?;
    let what = rest[..is].trim();
    if what.is_empty() || what.split_whitespace().count() > 3 || what.starts_with("name") {
        return None;
    }
    let value_at = source.len() - rest.len() + is + " is ".len();
    let value = clean_value(&source[value_at..])?;
    let (slot, text) = match what
        .strip_prefix("favorite ")
        .or_else(|| what.strip_prefix("favourite "))
    {
        Some(thing) => (
            format!("favorite:{thing}"),
            format!("The user's favorite {thing} is {value}."),
        ),
        None if what == "project" || what == "current project" => return None,
        None => (
            format!("my:{what}"),
            format!("The user's {what} is {value}."),
        ),
    };
    Some(Fact {
        text,
        slot,
        single: true,
    })
}

fn clean_value(raw: &str) -> Option<String> {
    let mut value = raw.trim().to_string();
    let lower = value.to_lowercase();
    if lower.len() == value.len() {
        if let Some(at) = VALUE_ENDS.iter().filter_map(|e| lower.find(e)).min() {
            value.truncate(at);
        }
        loop {
            let l = value.to_lowercase();
            match TRAILING.iter().find(|t| l.ends_with(*t)) {
                Some(t) => value.truncate(value.len() - t.len()),
                None => break,
            }
        }
    }
    let value = value
        .trim()
        .trim_end_matches([',', ':', ')', '('])
        .trim()
        .to_string();
    let words = value.split_whitespace().count();
    if value.is_empty() || words > 12 || value.chars().count() > 120 {
        return None;
    }
    Some(value)
}

/// Lower-case, without articles and "project", for comparing values.
pub fn normalise(value: &str) -> String {
    value
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty() && !["the", "a", "an", "project", "my", "some"].contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Up to three words of a name; later words only when capitalised.
fn name(v: &str) -> String {
    let mut name: Vec<&str> = Vec::new();
    for (i, w) in v.split_whitespace().take(3).enumerate() {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'');
        if w.is_empty() || (i > 0 && !w.chars().next().is_some_and(char::is_uppercase)) {
            break;
        }
        name.push(w);
    }
    format!("The user's name is {}.", name.join(" "))
}

fn project(v: &str) -> String {
    let core = strip_article(v);
    let core = core
        .strip_suffix(" project")
        .or_else(|| core.strip_suffix(" Project"))
        .unwrap_or(core);
    let core = core
        .strip_prefix("project ")
        .or_else(|| core.strip_prefix("Project "))
        .unwrap_or(core);
    let named = core.split_whitespace().count() <= 3
        && core
            .split_whitespace()
            .any(|w| w.chars().next().is_some_and(char::is_uppercase));
    if named {
        format!("The user works on the {core} project.")
    } else {
        format!("The user works on {v}.")
    }
}

fn strip_article(v: &str) -> &str {
    for a in ["the ", "The ", "a ", "A ", "an ", "An "] {
        if let Some(r) = v.strip_prefix(a) {
            return r;
        }
    }
    v
}

fn employer(v: &str) -> String {
    format!("The user works at {v}.")
}

fn occupation(v: &str) -> String {
    let article = if v.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    };
    format!("The user is {article} {v}.")
}

fn location(v: &str) -> String {
    format!("The user lives in {v}.")
}

fn origin(v: &str) -> String {
    format!("The user is from {v}.")
}

fn likes(v: &str) -> String {
    format!("The user likes {v}.")
}

fn dislikes(v: &str) -> String {
    format!("The user does not like {v}.")
}

fn has(v: &str) -> String {
    format!(
        "The user has {} {v}.",
        if v.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        }
    )
}

#[cfg(test)]
mod tests;

/// A fact as its owner would say it ("The user lives in Lisbon." becomes
/// "I live in Lisbon."), which is what facts are embedded as: questions
/// about oneself ("Where do I live?") are in the first person too.
pub fn first_person(text: &str) -> String {
    let Some(rest) = text
        .strip_prefix("The user")
        .or_else(|| text.strip_prefix("the user"))
    else {
        return text.to_string();
    };
    if let Some(r) = rest.strip_prefix("'s ") {
        return format!("My {r}");
    }
    let Some(r) = rest.strip_prefix(' ') else {
        return text.to_string();
    };
    let (verb, tail) = r.split_once(' ').unwrap_or((r, ""));
    let verb = match verb {
        "is" => "am".to_string(),
        "has" => "have".to_string(),
        "does" => "do".to_string(),
        v if v.ends_with("ies") => format!("{}y", &v[..v.len() - 3]),
        v if v.ends_with("es")
            && (v.ends_with("shes") || v.ends_with("ches") || v.ends_with("sses")) =>
        {
            v[..v.len() - 2].to_string()
        }
        v if v.ends_with('s') && !v.ends_with("ss") => v[..v.len() - 1].to_string(),
        v => v.to_string(),
    };
    format!("I {verb} {tail}").trim_end().to_string()
}
