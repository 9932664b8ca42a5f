use super::*;

fn learned(messages: &[&str]) -> StyleProfile {
    let mut p = StyleProfile::default();
    for m in messages {
        p.learn(m, Utc::now());
    }
    p
}

#[test]
fn casual_short_french_speakers_get_a_matching_instruction() {
    let p = learned(&[
        "salut, c'est quoi le truc pour que je fasse ça vite stp",
        "ok cool, et pour les fichiers? en bref",
        "je veux juste la réponse courte, pas de blabla avec les détails",
    ]);
    assert_eq!(p.language().0, "fr");
    assert_eq!(p.preferred_length(), "short");
    let i = p.instruction();
    assert!(i.contains("Reply in French."), "{i}");
    assert!(i.contains("casual"), "{i}");
    assert!(i.contains("short"), "{i}");
}

#[test]
fn formal_detailed_english_writers() {
    let p = learned(&[
        "Good morning. Could you please explain in detail how the scheduler assigns tasks?",
        "Thank you. Would you kindly elaborate on the failure modes, step by step?",
    ]);
    assert_eq!(p.language().0, "en");
    assert!(p.formality > 0.7, "{p:?}");
    assert_eq!(p.preferred_length(), "long");
    let i = p.instruction();
    assert!(i.contains("formal") && i.contains("detailed"), "{i}");
    assert!(!i.contains("Reply in"), "{i}");
}

#[test]
fn the_average_decays_towards_recent_messages() {
    let mut p = learned(&["Could you please explain this in detail? Thank you."; 5]);
    assert_eq!(p.preferred_length(), "long");
    for _ in 0..8 {
        p.learn("briefly: what is it", Utc::now());
    }
    assert_eq!(p.preferred_length(), "short");
    assert_eq!(p.messages, 13);
    let frustrated = learned(&["this is wrong and useless, it doesn't work"; 2]);
    assert_eq!(frustrated.tone_label(), "negative");
    assert!(frustrated.instruction().contains("frustrated"));
}

#[test]
fn an_empty_profile_says_nothing() {
    assert_eq!(StyleProfile::default().instruction(), "");
    assert_eq!(detect_language(&["ok"]), None);
}
