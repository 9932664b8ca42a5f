//! Layering of settings: the embedded defaults define every key and its type;
//! a TOML file and then `MONGARS_*` environment variables override them. Each
//! override is checked against the default's type here, so a wrong value is
//! reported with its key and origin instead of failing deep inside serde.

use crate::error::{ConfigError, Origin};
use toml::{Table, Value};

/// Environment variables that start with this belong to monGARS.
pub const ENV_PREFIX: &str = "MONGARS_";
/// Names the settings file; not itself a setting.
pub const CONFIG_PATH_VAR: &str = "MONGARS_CONFIG";
/// Reserved for the test harness (database URLs of test servers); never settings.
pub const TEST_VAR_PREFIX: &str = "MONGARS_TEST_";

/// Overlay `file` on `base`, reporting unknown keys and type mismatches.
pub fn merge_file(base: &mut Table, file: Table, path: &str, errors: &mut Vec<ConfigError>) {
    merge_table(base, file, "", &Origin::File(path.to_string()), errors);
}

fn merge_table(
    base: &mut Table,
    over: Table,
    prefix: &str,
    origin: &Origin,
    errors: &mut Vec<ConfigError>,
) {
    for (key, value) in over {
        let full = join(prefix, &key);
        if !base.contains_key(&key) {
            match open_map_template(base, prefix, &value) {
                Ok(Some(template)) => {
                    base.insert(key.clone(), template);
                }
                Ok(None) => {
                    errors.push(ConfigError::new(full, "unknown setting", origin.clone()));
                    continue;
                }
                Err(msg) => {
                    errors.push(ConfigError::new(full, msg, origin.clone()));
                    continue;
                }
            }
        }
        let Some(current) = base.get_mut(&key) else {
            continue;
        };
        match (current, value) {
            (Value::Table(cur), Value::Table(new)) => merge_table(cur, new, &full, origin, errors),
            (current, value) => match coerce(current, value) {
                Ok(v) => *current = v,
                Err(msg) => errors.push(ConfigError::new(full, msg, origin.clone())),
            },
        }
    }
}

/// Tables whose entries are named by the operator. A new entry starts as a
/// copy of a template entry, so it is type-checked like any other setting:
/// backends copy the entry named like their `kind`, profiles copy `default`.
const OPEN_MAPS: [(&str, Template); 2] = [
    ("llm.backends", Template::ByKind),
    ("llm.profiles", Template::Named("default")),
];

#[derive(Clone, Copy)]
enum Template {
    ByKind,
    Named(&'static str),
}

fn open_map_template(base: &Table, prefix: &str, value: &Value) -> Result<Option<Value>, String> {
    let Some((_, template)) = OPEN_MAPS.iter().find(|(path, _)| *path == prefix) else {
        return Ok(None);
    };
    let Value::Table(new) = value else {
        return Err("expected a table of settings".into());
    };
    let name = match template {
        Template::Named(name) => *name,
        Template::ByKind => match new.get("kind") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => {
                return Err("a new entry needs `kind` (one of the existing entries' kinds)".into());
            }
        },
    };
    let template = base.values().find(|v| match template {
        Template::Named(_) => false,
        Template::ByKind => v.get("kind").and_then(Value::as_str) == Some(name),
    });
    match template.or_else(|| base.get(name)) {
        Some(t) => Ok(Some(t.clone())),
        None => Err(format!("no entry to start from for {name:?}")),
    }
}

/// Accept `value` where `default` stands when their TOML types agree (an
/// integer is accepted for a float).
fn coerce(default: &Value, value: Value) -> Result<Value, String> {
    match (default, value) {
        (Value::Float(_), Value::Integer(i)) => Ok(Value::Float(i as f64)),
        (Value::Table(_), _) => Err("expected a table of settings".into()),
        (d, v) if std::mem::discriminant(d) == std::mem::discriminant(&v) => Ok(v),
        (d, v) => Err(format!(
            "expected {}, got {} {}",
            type_name(d),
            type_name(&v),
            v
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// Apply every `MONGARS_*` variable in `vars` (name, value) to `base`.
pub fn apply_env(
    base: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
    errors: &mut Vec<ConfigError>,
) {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with(ENV_PREFIX)
                && name != CONFIG_PATH_VAR
                && !name.starts_with(TEST_VAR_PREFIX)
        })
        .collect();
    // Deterministic order, so error lists are stable.
    vars.sort();
    for (name, raw) in vars {
        let origin = Origin::Env(name.clone());
        let lowered = name[ENV_PREFIX.len()..].to_ascii_lowercase();
        let segments: Vec<&str> = lowered.split("__").collect();
        let mut raw = raw;
        let path = match resolve(base, &segments) {
            Some(path) => path,
            // `MONGARS_X_FILE=/run/secrets/x`: the value of X is in that file
            // (Docker and Compose secrets), unless X_FILE is itself a setting.
            None => match file_variant(base, &lowered) {
                Some(path) => match std::fs::read_to_string(&raw) {
                    Ok(content) => {
                        raw = content.trim_end_matches(['\n', '\r']).to_string();
                        path
                    }
                    Err(e) => {
                        let msg = format!("cannot read the file {raw}: {e}");
                        errors.push(ConfigError::new(path.join("."), msg, origin));
                        continue;
                    }
                },
                None => {
                    let key = segments.join(".");
                    errors.push(ConfigError::new(key, "unknown setting", origin));
                    continue;
                }
            },
        };
        let key = path.join(".");
        let Some(slot) = lookup_mut(base, &path) else {
            continue;
        };
        match parse_env_value(slot, &raw) {
            Ok(v) => *slot = v,
            Err(msg) => errors.push(ConfigError::new(key, msg, origin)),
        }
    }
}

/// The setting an `..._FILE` variable names, if it is one.
fn file_variant(base: &Table, lowered: &str) -> Option<Vec<String>> {
    let stem = lowered.strip_suffix("_file")?;
    let segments: Vec<&str> = stem.split("__").collect();
    resolve(base, &segments)
}

/// Find the key path named by env segments. A segment that is not a key of
/// the current table may be `table_key` with single underscores.
fn resolve(table: &Table, segments: &[&str]) -> Option<Vec<String>> {
    let (first, rest) = segments.split_first()?;
    if first.is_empty() {
        return None;
    }
    if let Some(value) = table.get(*first) {
        return match (value, rest.is_empty()) {
            (Value::Table(_), true) => None,
            (_, true) => Some(vec![first.to_string()]),
            (Value::Table(inner), false) => {
                let mut path = resolve(inner, rest)?;
                path.insert(0, first.to_string());
                Some(path)
            }
            (_, false) => None,
        };
    }
    for (i, _) in first.match_indices('_') {
        let (head, tail) = (&first[..i], &first[i + 1..]);
        if let Some(Value::Table(inner)) = table.get(head) {
            let mut inner_segments = vec![tail];
            inner_segments.extend_from_slice(rest);
            if let Some(mut path) = resolve(inner, &inner_segments) {
                path.insert(0, head.to_string());
                return Some(path);
            }
        }
    }
    None
}

fn lookup_mut<'a>(table: &'a mut Table, path: &[String]) -> Option<&'a mut Value> {
    let (last, parents) = path.split_last()?;
    let mut current = table;
    for p in parents {
        current = current.get_mut(p)?.as_table_mut()?;
    }
    current.get_mut(last)
}

fn parse_env_value(default: &Value, raw: &str) -> Result<Value, String> {
    let trimmed = raw.trim();
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Integer(_) => trimmed
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, got {raw:?}")),
        Value::Float(_) => trimmed
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        Value::Boolean(_) => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        Value::Array(_) if trimmed.starts_with('[') => {
            let doc: Table = toml::from_str(&format!("v = {trimmed}"))
                .map_err(|_| format!("expected a TOML list, got {raw:?}"))?;
            doc.get("v")
                .cloned()
                .ok_or_else(|| format!("expected a list, got {raw:?}"))
        }
        Value::Array(_) => Ok(Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
        other => Err(format!(
            "{} cannot be set from the environment",
            type_name(other)
        )),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Table {
        toml::from_str(
            r#"
            data_dir = "data"
            [server]
            port = 8000
            ratio = 0.5
            [auth]
            secret = ""
            [auth.throttle]
            window_secs = 300
            [bootstrap]
            admin_username = ""
            [cors]
            origins = ["a"]
            "#,
        )
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn env_nested_and_single_underscore_forms_resolve() {
        let mut t = base();
        let mut errors = vec![];
        apply_env(
            &mut t,
            env(&[
                ("MONGARS_SERVER__PORT", "9000"),
                ("MONGARS_BOOTSTRAP_ADMIN_USERNAME", "root"),
                ("MONGARS_AUTH__THROTTLE__WINDOW_SECS", "7"),
                ("MONGARS_DATA_DIR", "/srv"),
                ("MONGARS_SERVER__RATIO", "2"),
                ("MONGARS_CORS__ORIGINS", "http://x, http://y"),
                ("MONGARS_CONFIG", "ignored.toml"),
                ("MONGARS_TEST_POSTGRES_URL", "ignored"),
                ("OTHER", "ignored"),
            ]),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(t["server"]["port"].as_integer(), Some(9000));
        assert_eq!(t["bootstrap"]["admin_username"].as_str(), Some("root"));
        assert_eq!(t["auth"]["throttle"]["window_secs"].as_integer(), Some(7));
        assert_eq!(t["data_dir"].as_str(), Some("/srv"));
        assert_eq!(t["server"]["ratio"].as_float(), Some(2.0));
        assert_eq!(t["cors"]["origins"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn env_errors_name_key_and_variable() {
        let mut t = base();
        let mut errors = vec![];
        apply_env(
            &mut t,
            env(&[
                ("MONGARS_SERVER__PORT", "abc"),
                ("MONGARS_SERVER__PROT", "1"),
                ("MONGARS_SERVER", "1"),
            ]),
            &mut errors,
        );
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 3, "{shown:?}");
        assert!(shown.iter().any(|s| s.contains("server.port")
            && s.contains("expected an integer")
            && s.contains("MONGARS_SERVER__PORT")));
        assert!(
            shown
                .iter()
                .any(|s| s.contains("server.prot: unknown setting"))
        );
    }

    #[test]
    fn open_maps_take_new_entries_from_templates() {
        let mut t: Table = toml::from_str(
            r#"
            [llm.backends.ollama]
            kind = "ollama"
            url = ""
            retries = 1
            [llm.profiles.default.general]
            backends = ["embedded"]
            max_tokens = 256
            "#,
        )
        .unwrap();
        let file: Table = toml::from_str(
            r#"
            [llm.backends.gpu2]
            kind = "ollama"
            url = "http://gpu2:11434"
            [llm.backends.nokind]
            url = "x"
            [llm.backends.typo]
            kind = "ollama"
            retriez = 3
            [llm.profiles.fast.general]
            max_tokens = 64
            "#,
        )
        .unwrap();
        let mut errors = vec![];
        merge_file(&mut t, file, "f.toml", &mut errors);
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["llm.backends.nokind", "llm.backends.typo.retriez"]);
        let gpu2 = &t["llm"]["backends"]["gpu2"];
        assert_eq!(gpu2["url"].as_str(), Some("http://gpu2:11434"));
        assert_eq!(gpu2["retries"].as_integer(), Some(1));
        let fast = &t["llm"]["profiles"]["fast"]["general"];
        assert_eq!(fast["max_tokens"].as_integer(), Some(64));
        assert_eq!(fast["backends"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn file_overlay_checks_types_and_unknown_keys() {
        let mut t = base();
        let mut errors = vec![];
        let file: Table = toml::from_str(
            r#"
            data_dir = 5
            nope = true
            [server]
            port = 1234
            ratio = 3
            [auth.throttle]
            window_secs = "long"
            "#,
        )
        .unwrap();
        merge_file(&mut t, file, "my.toml", &mut errors);
        let mut keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["auth.throttle.window_secs", "data_dir", "nope"]);
        assert_eq!(t["server"]["port"].as_integer(), Some(1234));
        assert_eq!(t["server"]["ratio"].as_float(), Some(3.0));
        assert!(errors.iter().all(|e| e.to_string().contains("my.toml")));
    }
}
