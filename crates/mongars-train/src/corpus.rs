//! Text for training, its benches and tests, written for the project: a
//! fixed general set of everyday questions with plain helpful answers (the
//! check that an adapter does not make the model worse at everything
//! else), a separate replay set of the same kind mixed into training so
//! that a run keeps answering everything else as before, and a generator of one user's chats whose answers always take the
//! same distinctive form (lower case, terse, signed "over."), the style an
//! adapter should learn.

use crate::rng::Rng;

/// One exchange: the user's message and the assistant's answer.
pub type Chat = (String, String);

/// The shipped general set (24 exchanges).
pub fn general_set() -> Vec<Chat> {
    tsv(include_str!("../data/general.tsv"))
}

/// The shipped replay set (32 exchanges, none of them in the general set).
pub fn replay_set() -> Vec<Chat> {
    tsv(include_str!("../data/replay.tsv"))
}

fn tsv(text: &str) -> Vec<Chat> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect()
}

/// How many replay exchanges go with `n` of the user's so that they are
/// `share` of the whole (none for a share of 0, at most `available`).
pub fn replay_count(n: usize, share: f64, available: usize) -> usize {
    if share <= 0.0 || n == 0 {
        return 0;
    }
    let want = (n as f64 * share / (1.0 - share).max(1e-9)).round() as usize;
    want.clamp(1, available)
}

const CAPITALS: [(&str, &str); 16] = [
    ("France", "paris"),
    ("Italy", "rome"),
    ("Spain", "madrid"),
    ("Portugal", "lisbon"),
    ("Germany", "berlin"),
    ("Austria", "vienna"),
    ("Norway", "oslo"),
    ("Sweden", "stockholm"),
    ("Greece", "athens"),
    ("Ireland", "dublin"),
    ("Poland", "warsaw"),
    ("Egypt", "cairo"),
    ("Kenya", "nairobi"),
    ("Peru", "lima"),
    ("Canada", "ottawa"),
    ("Chile", "santiago"),
];

const OPPOSITES: [(&str, &str); 12] = [
    ("hot", "cold"),
    ("early", "late"),
    ("empty", "full"),
    ("light", "heavy"),
    ("open", "closed"),
    ("quiet", "loud"),
    ("wet", "dry"),
    ("young", "old"),
    ("fast", "slow"),
    ("rich", "poor"),
    ("sharp", "blunt"),
    ("inside", "outside"),
];

const NUMBERS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// `n` chats in the terse style, drawn with `seed`. Different seeds give
/// different mixes of the same kinds of question.
pub fn style_corpus(seed: u64, n: usize) -> Vec<Chat> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| match rng.below(3) {
            0 => {
                let (country, city) = CAPITALS[rng.below(CAPITALS.len())];
                let q = match rng.below(3) {
                    0 => format!("What is the capital of {country}?"),
                    1 => format!("Which city is the capital of {country}?"),
                    _ => format!("Tell me the capital city of {country}, please."),
                };
                (q, format!("{city}. over."))
            }
            1 => {
                let (word, opposite) = OPPOSITES[rng.below(OPPOSITES.len())];
                let q = match rng.below(2) {
                    0 => format!("What is the opposite of \"{word}\"?"),
                    _ => format!("Give me a word that means the opposite of {word}."),
                };
                (q, format!("{opposite}. over."))
            }
            _ => {
                let (a, b) = (rng.below(11), rng.below(10));
                let q = match rng.below(2) {
                    0 => format!("What is {a} plus {b}?"),
                    _ => format!("Can you add {a} and {b} for me?"),
                };
                (q, format!("{}. over.", NUMBERS[a + b]))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_is_apart_from_the_general_set_and_sized_by_its_share() {
        let (general, replay) = (general_set(), replay_set());
        assert_eq!(replay.len(), 32);
        assert!(
            replay
                .iter()
                .all(|(q, _)| general.iter().all(|(g, _)| g != q))
        );
        assert!(replay.iter().all(|(q, a)| !q.is_empty() && !a.is_empty()));
        assert_eq!(replay_count(12, 0.25, 32), 4);
        assert_eq!(replay_count(300, 0.25, 32), 32);
        assert_eq!(replay_count(12, 0.0, 32), 0);
        assert_eq!(replay_count(1, 0.1, 32), 1);
    }

    #[test]
    fn the_sets_are_what_they_say() {
        let general = general_set();
        assert_eq!(general.len(), 24);
        assert!(general.iter().all(|(q, a)| !q.is_empty() && !a.is_empty()));
        let style = style_corpus(1, 50);
        assert_eq!(style, style_corpus(1, 50));
        assert_ne!(style, style_corpus(2, 50));
        assert!(
            style
                .iter()
                .all(|(_, a)| a.ends_with(". over.") && a == &a.to_lowercase())
        );
    }
}
