//! Text for the training benches and tests, written for the project:
//! a fixed general set of everyday questions with plain helpful answers
//! (the check that an adapter does not make the model worse at everything
//! else), and a generator of one user's chats whose answers always take the
//! same distinctive form (lower case, terse, signed "over."), the style an
//! adapter should learn.

use crate::rng::Rng;

/// One exchange: the user's message and the assistant's answer.
pub type Chat = (String, String);

/// The shipped general set (24 exchanges).
pub fn general_set() -> Vec<Chat> {
    include_str!("../data/general.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect()
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
