//! Small text helpers shared by the prompt builder and the research
//! providers.

/// `text` on one line (runs of whitespace become one space), cut to at most
/// `max` characters at a word boundary, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max).collect();
    match cut.rfind(' ') {
        Some(at) if at > max / 2 => format!("{}…", &cut[..at]),
        _ => format!("{cut}…"),
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn short_text_is_kept_on_one_line() {
        assert_eq!(clip("a note\nover  two lines", 50), "a note over two lines");
    }

    #[test]
    fn long_text_is_cut_at_a_word() {
        assert_eq!(clip("alpha beta gamma delta", 13), "alpha beta…");
        assert_eq!(clip("abcdefghijklmnop", 5), "abcde…");
    }
}
