//! Readable text of an HTML page: tags, scripts, styles and navigation
//! removed, entities decoded, whitespace collapsed.

/// The page's `<title>`, if any.
pub fn title_of(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title")? + open_end;
    let t = decode(html[open_end..end].trim());
    (!t.is_empty()).then_some(t)
}

/// Visible text of the page body.
pub fn text_of(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len() / 2);
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < html.len() {
        if bytes[i] == b'<' {
            // Skip whole elements whose content is not text.
            let mut skipped = false;
            for tag in [
                "script", "style", "noscript", "nav", "header", "footer", "svg", "head",
            ] {
                if lower[i + 1..].starts_with(tag) {
                    let close = format!("</{tag}");
                    if let Some(end) = lower[i..].find(&close) {
                        let after = lower[i + end..]
                            .find('>')
                            .map_or(html.len(), |g| i + end + g + 1);
                        i = after;
                        skipped = true;
                        break;
                    }
                }
            }
            if skipped {
                out.push(' ');
                continue;
            }
            match html[i..].find('>') {
                Some(end) => {
                    i += end + 1;
                    out.push(' ');
                }
                None => break,
            }
        } else {
            let next = html[i..].find('<').map_or(html.len(), |n| i + n);
            out.push_str(&html[i..next]);
            i = next;
        }
    }
    decode(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_words_and_drops_the_machinery() {
        let page = "<html><head><title>Kuiper &amp; co</title><style>p{}</style></head>\
            <body><nav>Home | About</nav><script>var x = '<p>';</script>\
            <h1>The Kuiper belt</h1><p>A region of the Solar System&nbsp;beyond Neptune.</p></body></html>";
        assert_eq!(title_of(page).as_deref(), Some("Kuiper & co"));
        assert_eq!(
            text_of(page),
            "The Kuiper belt A region of the Solar System beyond Neptune."
        );
        assert_eq!(text_of("no tags at all"), "no tags at all");
        assert_eq!(text_of("<p>unclosed"), "unclosed");
    }
}
