//! A conversation whose history window moved, on the real default model:
//! the turns it keeps are moved down the cache, not read again, and only
//! for the account that left them.

use mongars_core::domain::{ChatMessage, ChatRole, GenerationRequest, SamplingParams};
use mongars_llm::embedded::{EmbeddedBackend, EngineStats, load_backend};

mod support;
use support::{collect, config, model_path};

const RULES: &str = "You are the help desk assistant of a small public library. \
    Answer questions about geography clearly and in one short sentence.";

/// Five questions and answers of a conversation so far.
const HISTORY: [(&str, &str); 5] = [
    (
        "Which river flows through London?",
        "The Thames flows through London, from the Cotswolds to the North Sea.",
    ),
    (
        "What is the longest river in Africa?",
        "The Nile is the longest river in Africa, flowing north into the Mediterranean.",
    ),
    (
        "Which mountain range separates Spain from France?",
        "The Pyrenees form the border between Spain and France.",
    ),
    (
        "What is the largest desert in Asia?",
        "The Gobi Desert, in northern China and southern Mongolia, is the largest in Asia.",
    ),
    (
        "Which ocean lies between Africa and Australia?",
        "The Indian Ocean lies between Africa and Australia.",
    ),
];

/// The rules, `turns` (question, answer), then `next`.
fn chat(turns: &[(&str, &str)], next: &str, account: i64, max_tokens: u32) -> GenerationRequest {
    let mut messages = vec![ChatMessage::new(ChatRole::System, RULES)];
    for (q, a) in turns {
        messages.push(ChatMessage::new(ChatRole::User, *q));
        messages.push(ChatMessage::new(ChatRole::Assistant, *a));
    }
    messages.push(ChatMessage::new(ChatRole::User, next));
    let mut request = GenerationRequest::classified(messages, SamplingParams::greedy(max_tokens));
    request.account = Some(account);
    request
}

const FIRST: &str = "Which sea lies between Italy and Greece?";
const NEXT: &str = "What is the capital of France?";

/// The conversation after its window moved: the first two turns are gone,
/// the three others and the last question with its reply stay.
fn moved(reply: &str, account: i64) -> GenerationRequest {
    let mut kept: Vec<(&str, &str)> = HISTORY[2..].to_vec();
    kept.push((FIRST, reply));
    chat(&kept, NEXT, account, 24)
}

/// Prompt tokens read, reused and moved since `before`.
fn since(backend: &EmbeddedBackend, before: EngineStats) -> (u64, u64, u64) {
    let now = backend.stats();
    (
        now.prompt_tokens_read - before.prompt_tokens_read,
        now.prompt_tokens_reused - before.prompt_tokens_reused,
        now.prompt_tokens_moved - before.prompt_tokens_moved,
    )
}

fn prompt_len(backend: &EmbeddedBackend, request: &GenerationRequest) -> u64 {
    backend.prompt_tokens(&request.messages).unwrap().len() as u64
}

#[tokio::test]
async fn kept_turns_are_moved_for_their_own_account_only() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path.clone(), 2, 4)).unwrap();
    let (reply, _) = collect(&backend, chat(&HISTORY, FIRST, 1, 24)).await;
    // The rules as the template writes them, and the opening of a turn.
    let rules = backend
        .prompt_tokens(&[ChatMessage::new(ChatRole::System, RULES)])
        .unwrap()
        .len() as u64;

    // The same account, window moved: the three kept turns and the last
    // exchange come from the cache, moved down; only the new question is
    // read.
    let next = moved(&reply, 1);
    let prompt = prompt_len(&backend, &next);
    let before = backend.stats();
    let (text, _) = collect(&backend, next).await;
    let (read, reused, shifted) = since(&backend, before);
    assert_eq!(read + reused, prompt);
    assert!(
        shifted > (prompt - rules) / 2,
        "moved {shifted} of {prompt} tokens ({rules} of rules)"
    );
    assert!(read < 40, "read {read} of {prompt} tokens");
    assert!(text.contains("Paris"), "after the move: {text}");

    // Reading all but the rules (and the opening of the first turn),
    // moving nothing, the reply still right.
    let reads_all = |engine: &EmbeddedBackend, before: EngineStats, text: &str| {
        let (read, _, shifted) = since(engine, before);
        assert_eq!(shifted, 0);
        assert!(read + rules + 8 >= prompt, "read {read} of {prompt}");
        assert!(text.contains("Paris"), "{text}");
    };
    // Another account asking the very same: the moved cells carry the
    // first account's dropped turns, so it reads them itself.
    let before = backend.stats();
    let (text, _) = collect(&backend, moved(&reply, 2)).await;
    reads_all(&backend, before, &text);

    // An engine that never moves reads it all again, and answers the same
    // question the same way.
    let mut cfg = config(path, 2, 4);
    cfg.move_kept_turns = false;
    let fresh = load_backend(&cfg).unwrap();
    collect(&fresh, chat(&HISTORY, FIRST, 1, 24)).await;
    let before = fresh.stats();
    let (text, _) = collect(&fresh, moved(&reply, 1)).await;
    reads_all(&fresh, before, &text);
}

#[tokio::test]
async fn cells_another_conversation_shares_are_never_moved() {
    let Some(path) = model_path() else { return };
    let backend = std::sync::Arc::new(load_backend(&config(path, 2, 4)).unwrap());
    // Two conversations that arrive together and begin alike: the second
    // takes the first's prompt from its cells (`prefill::share`), so both
    // sequences hold the same cells for the rules and the five turns.
    let long_reply = "It is the Ionian Sea, a part of the Mediterranean between the \
        heel of Italy and the west coast of Greece, with Corfu among its islands.";
    let mut history = HISTORY.to_vec();
    history.push((FIRST, long_reply));
    let other = chat(&history, "And which sea lies east of Greece?", 2, 8);
    let first = {
        let b = backend.clone();
        tokio::spawn(async move { collect(&b, chat(&HISTORY, FIRST, 1, 24)).await })
    };
    let second = {
        let b = backend.clone();
        let r = other.clone();
        tokio::spawn(async move { collect(&b, r).await })
    };
    let (reply, _) = first.await.unwrap();
    second.await.unwrap();
    // The other conversation asked again: it reads only its last token.
    let (again, was) = collect(&backend, other.clone()).await;

    // The first conversation's window moves. Its kept turns are in cells
    // the other sequence holds too: moving them would move them for it.
    let before = backend.stats();
    let (text, _) = collect(&backend, moved(&reply, 1)).await;
    let (_, _, shifted) = since(&backend, before);
    assert_eq!(shifted, 0, "shared cells were moved");
    assert!(text.contains("Paris"), "{text}");
    // The other conversation's cache is intact: the same question gets the
    // same reply with the same log-probabilities. (Had its cells been
    // moved, its reply read them at the wrong positions: the same words
    // here, but a mean log-probability of -0.204 against -0.164.)
    let before = backend.stats();
    let (after, now) = collect(&backend, other).await;
    let (read, _, _) = since(&backend, before);
    assert_eq!(read, 1, "the other conversation lost its cache");
    assert_eq!(after, again);
    let (was, now) = (was.mean_logprob.unwrap(), now.mean_logprob.unwrap());
    assert!((was - now).abs() < 1e-6, "mean logprob {was} then {now}");
}
