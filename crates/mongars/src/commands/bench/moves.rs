//! `mongars bench generate`, the turn at which a long conversation's
//! history window moves: two engines on the same model, one moving the
//! kept turns down its cache (`llm.embedded.move_kept_turns`), one reading
//! them again. Time to first token, prompt tokens read, and how the moved
//! replies compare with the read-again ones.

use super::pct;
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::domain::{
    ChatMessage, ChatRole, GenerationRequest, GenerationUsage, SamplingParams,
};
use mongars_core::ports::{LlmBackend, read_to_end};
use mongars_llm::embedded::{EmbeddedBackend, load_backend};

/// Questions and answers the conversations are made of.
const EXCHANGES: [(&str, &str); 12] = [
    (
        "Which river flows through London?",
        "The Thames flows through London on its way to the North Sea.",
    ),
    (
        "What is the longest river in Africa?",
        "The Nile, which flows north into the Mediterranean Sea.",
    ),
    (
        "Which mountains separate Spain from France?",
        "The Pyrenees form the border between Spain and France.",
    ),
    (
        "What is the largest desert in Asia?",
        "The Gobi Desert, in northern China and southern Mongolia.",
    ),
    (
        "How long should I steep green tea?",
        "Two to three minutes in water just below boiling keeps it from turning bitter.",
    ),
    (
        "What is a good first plant for a dark flat?",
        "A snake plant or a pothos: both cope with little light and rare watering.",
    ),
    (
        "How do I keep basil alive indoors?",
        "Give it a sunny window, water when the top of the soil is dry, and pinch the tips.",
    ),
    (
        "What should I read this weekend?",
        "Try a short novel such as The Old Man and the Sea, which reads in an afternoon.",
    ),
    (
        "What is the difference between a list and a tuple?",
        "A list can be changed after it is made; a tuple cannot.",
    ),
    (
        "Suggest a quick dinner for tonight.",
        "Pasta with garlic, olive oil, chilli and parsley takes fifteen minutes.",
    ),
    (
        "How can I sleep better?",
        "Keep regular hours, a dark cool room, and no screens in the last hour.",
    ),
    (
        "Give me an idea for a short walk near the sea.",
        "Follow the coast path at low tide and come back along the dunes.",
    ),
];

const LAST: &str = "Which ocean lies between Africa and Australia?";
const NEXT: &str = "And what is the capital of France?";

/// Conversation `c`: its system prompt, `turns` exchanges, then `question`.
fn conversation(c: usize, turns: &[(&str, &str)], question: &str) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::new(
        ChatRole::System,
        format!("You are a helpful assistant. Conversation {c}: answer in one or two sentences."),
    )];
    for (q, a) in turns {
        messages.push(ChatMessage::new(ChatRole::User, *q));
        messages.push(ChatMessage::new(ChatRole::Assistant, *a));
    }
    messages.push(ChatMessage::new(ChatRole::User, question));
    messages
}

/// One reply: its text and usage.
async fn reply(
    engine: &EmbeddedBackend,
    messages: Vec<ChatMessage>,
    account: i64,
) -> anyhow::Result<(String, GenerationUsage)> {
    let mut request = GenerationRequest::classified(messages, SamplingParams::greedy(32));
    request.account = Some(account);
    Ok(read_to_end(engine.generate(request).await?).await?)
}

/// What one engine did at the move.
#[derive(Default)]
struct Side {
    ttft_ms: Vec<f64>,
    read: Vec<f64>,
    replies: Vec<String>,
    logprob: Vec<f64>,
}

/// Conversation `c` on `engine`: a chat with a full window, then the chat
/// after which its oldest `step` turns leave the prompt.
async fn at_move(
    engine: &EmbeddedBackend,
    side: &mut Side,
    c: usize,
    window: usize,
    step: usize,
) -> anyhow::Result<()> {
    let turns: Vec<(&str, &str)> = (0..window)
        .map(|i| EXCHANGES[(c + i) % EXCHANGES.len()])
        .collect();
    let account = c as i64 + 1;
    let (last, _) = reply(engine, conversation(c, &turns, LAST), account).await?;
    let mut kept = turns[step..].to_vec();
    kept.push((LAST, last.as_str()));
    let before = engine.stats().prompt_tokens_read;
    let (text, usage) = reply(engine, conversation(c, &kept, NEXT), account).await?;
    side.read
        .push((engine.stats().prompt_tokens_read - before) as f64);
    side.ttft_ms
        .push(usage.time_to_first_token.as_secs_f64() * 1000.0);
    side.logprob.push(usage.mean_logprob.unwrap_or(0.0));
    side.replies.push(text);
    Ok(())
}

pub async fn run(settings: &Settings, conversations: u32) -> anyhow::Result<()> {
    let load = |moving: bool| {
        let mut cfg = crate::wiring::llm::embedded_config(settings);
        cfg.move_kept_turns = moving;
        async move {
            tokio::task::spawn_blocking(move || load_backend(&cfg))
                .await?
                .context("llm.embedded.model_path")
        }
    };
    let engines = [load(false).await?, load(true).await?];
    let window = (settings.conversation.history_turns as usize).clamp(2, EXCHANGES.len());
    let step = (window / 2).max(1);
    let mut sides = [Side::default(), Side::default()];
    for c in 0..conversations.max(1) as usize {
        // Alternate which engine goes first, to even out drift.
        let order = if c % 2 == 0 { [0, 1] } else { [1, 0] };
        for e in order {
            at_move(&engines[e], &mut sides[e], c, window, step).await?;
        }
    }
    let [again, moved] = &sides;
    let n = again.replies.len();
    let same = |f: &dyn Fn(&str) -> String| {
        again
            .replies
            .iter()
            .zip(&moved.replies)
            .filter(|(a, b)| f(a) == f(b))
            .count()
    };
    let words = |s: &str| s.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
    println!();
    println!(
        "history window moves ({n} conversations of {window} turns; at the next chat the {step} oldest leave the prompt):"
    );
    println!(
        "{:<36} {:>14} {:>14} {:>8}",
        "", "read again", "moved", "ratio"
    );
    let (ta, tm) = (pct(&again.ttft_ms, 50.0), pct(&moved.ttft_ms, 50.0));
    println!(
        "{:<36} {:>14.0} {:>14.0} {:>8.3}",
        "time to first token, ms (median)",
        ta,
        tm,
        tm / ta
    );
    println!(
        "{:<36} {:>14.0} {:>14.0}",
        "prompt tokens read (median)",
        pct(&again.read, 50.0),
        pct(&moved.read, 50.0)
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "  moved replies: the read-again reply word for word in {} of {n}, its first 8 words in {} of {n}; mean log-probability {:.3} read again, {:.3} moved",
        same(&|s| s.to_string()),
        same(&words),
        mean(&again.logprob),
        mean(&moved.logprob)
    );
    Ok(())
}
