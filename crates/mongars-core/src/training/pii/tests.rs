use super::*;

fn kinds(text: &str) -> Vec<PiiKind> {
    redact(text, &[]).found
}

#[test]
fn e_mail_addresses() {
    let r = redact("Write to ana.silva+work@example.co.uk. Thanks", &[]);
    assert_eq!(r.text, "Write to [EMAIL]. Thanks");
    assert_eq!(kinds("no at sign here, user@localhost, @handle"), []);
}

#[test]
fn payment_cards_only_with_a_valid_checksum() {
    let r = redact("card 4111 1111 1111 1111 exp 12/29", &[]);
    assert_eq!(r.text, "card [CARD] exp 12/29");
    assert_eq!(kinds("pay with 5500-0000-0000-0004"), [PiiKind::Card]);
    // Sixteen digits that fail Luhn: an order number, not a card.
    assert!(!kinds("order 4111 1111 1111 1112").contains(&PiiKind::Card));
}

#[test]
fn ibans_only_with_valid_check_digits() {
    let r = redact("IBAN: GB82 WEST 1234 5698 7654 32 please", &[]);
    assert_eq!(r.text, "IBAN: [IBAN] please");
    assert_eq!(kinds("DE89370400440532013000"), [PiiKind::Iban]);
    assert!(!kinds("GB82 WEST 1234 5698 7654 33").contains(&PiiKind::Iban));
}

#[test]
fn phone_numbers() {
    assert_eq!(
        redact("call +351 912 345 678 now", &[]).text,
        "call [PHONE] now"
    );
    assert_eq!(redact("or (020) 7946 0958", &[]).text, "or [PHONE]");
    assert_eq!(kinds("I have 3 cats and 12 fish; in 2024 I ran 5 km"), []);
}

#[test]
fn ip_addresses() {
    assert_eq!(
        redact("server at 192.168.1.20.", &[]).text,
        "server at [IP]."
    );
    assert_eq!(
        redact("v6 2001:db8::ff00:42:8329 ok", &[]).text,
        "v6 [IP] ok"
    );
    assert_eq!(kinds("version 1.2.3 and 10:30"), []);
    assert_eq!(kinds("999.1.1.1"), []);
}

#[test]
fn street_addresses() {
    assert_eq!(
        redact("I live at 221B Baker Street, London", &[]).text,
        "I live at [ADDRESS], London"
    );
    assert_eq!(redact("au 12 rue de la Paix", &[]).text, "au [ADDRESS]");
    assert_eq!(redact("na Rua Augusta 27", &[]).text, "na [ADDRESS]");
    assert_eq!(kinds("I walked 3 miles down the road"), []);
}

#[test]
fn names_the_user_told_the_memory() {
    let r = redact("Ana said hi to anabela and ANA.", &["Ana"]);
    assert_eq!(r.text, "[NAME] said hi to anabela and [NAME].");
    assert_eq!(r.found, [PiiKind::Name, PiiKind::Name]);
    assert_eq!(redact("x", &["x"]).text, "x", "one letter is no name");
}

#[test]
fn several_kinds_in_one_text_and_clean_text_untouched() {
    let text = "Mail bob@example.org or call +44 20 7946 0958 from 10.0.0.1";
    let r = redact(text, &["Bob"]);
    assert_eq!(r.text, "Mail [EMAIL] or call [PHONE] from [IP]");
    assert_eq!(r.found, [PiiKind::Email, PiiKind::Phone, PiiKind::Ip]);
    let clean = "What is the capital of France? Paris, of course.";
    let r = redact(clean, &["Ana"]);
    assert!(r.is_clean());
    assert_eq!(r.text, clean);
    // Multi-byte text is handled on character boundaries.
    let r = redact("Zoë écrit à zoë@example.fr — merci", &["Zoë"]);
    assert_eq!(r.found.len(), 2, "{:?}", r);
}
