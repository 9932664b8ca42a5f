use super::*;

fn facts(m: &str) -> Vec<(String, String)> {
    extract_facts(m)
        .into_iter()
        .map(|f| (f.slot, f.text))
        .collect()
}

#[test]
fn names_and_projects_in_one_message() {
    assert_eq!(
        facts("My name is Ana and I work on the Orion project"),
        [
            ("name".into(), "The user's name is Ana.".into()),
            (
                "project".into(),
                "The user works on the Orion project.".into()
            )
        ]
    );
}

#[test]
fn five_ways_of_saying_one_thing_give_one_fact() {
    for m in [
        "My name is Ana.",
        "I'm Ana!",
        "Call me Ana",
        "Well, you can call me Ana.",
        "my name's Ana, by the way",
    ] {
        let f = facts(m);
        assert_eq!(f.len(), 1, "{m}: {f:?}");
        assert_eq!(f[0].1, "The user's name is Ana.", "{m}");
    }
    for m in [
        "I work on the Orion project.",
        "I'm working on Orion right now",
        "My project is Orion.",
        "Actually I am currently working on project Orion",
        "I work on Orion because it is fun",
    ] {
        let f = facts(m);
        assert_eq!(f.len(), 1, "{m}: {f:?}");
        assert_eq!(f[0].1, "The user works on the Orion project.", "{m}");
    }
}

#[test]
fn preferences_places_and_possessions() {
    assert_eq!(
        facts("I love green tea.")[0],
        ("likes:green tea".into(), "The user likes green tea.".into())
    );
    assert_eq!(facts("I don't like green tea")[0].0, "likes:green tea");
    assert_eq!(
        facts("I live in Lisbon now.")[0].1,
        "The user lives in Lisbon."
    );
    assert_eq!(
        facts("My favourite colour is blue")[0],
        (
            "favorite:colour".into(),
            "The user's favorite colour is blue.".into()
        )
    );
    assert_eq!(
        facts("my wife's name is Maria")[0].1,
        "The user's wife's name is Maria."
    );
    assert_eq!(
        facts("I am an engineer at a bank")[0].1,
        "The user is an engineer at a bank."
    );
    assert_eq!(
        facts("I have a dog named Rex")[0].1,
        "The user has a dog named Rex."
    );
}

#[test]
fn questions_moods_and_chatter_are_not_facts() {
    for m in [
        "What project do I work on?",
        "Is my name Ana?",
        "I'm a bit tired today",
        "I'm tired",
        "Tell me a joke",
        "The weather is nice.",
        "",
    ] {
        assert!(facts(m).is_empty(), "{m}: {:?}", facts(m));
    }
}

#[test]
fn facts_read_back_in_the_first_person() {
    assert_eq!(
        first_person("The user lives in Lisbon."),
        "I live in Lisbon."
    );
    assert_eq!(first_person("The user's name is Ana."), "My name is Ana.");
    assert_eq!(
        first_person("The user is an engineer."),
        "I am an engineer."
    );
    assert_eq!(
        first_person("The user does not like olives."),
        "I do not like olives."
    );
    assert_eq!(first_person("The user has a dog."), "I have a dog.");
    assert_eq!(
        first_person("The user works on the Orion project."),
        "I work on the Orion project."
    );
    assert_eq!(
        first_person("I am allergic to peanuts."),
        "I am allergic to peanuts."
    );
}
