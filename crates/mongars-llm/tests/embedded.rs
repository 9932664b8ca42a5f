//! The embedded engine on the real default model (fetched by `make models`).
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

use mongars_core::domain::{
    ChatMessage, ChatRole, FinishReason, GenerationEvent, GenerationRequest, ModelRole,
    SamplingParams,
};
use mongars_core::ports::{LlmBackend, LlmError};
use mongars_llm::embedded::load_backend;
use std::time::{Duration, Instant};

mod support;
use support::{collect, config, model_path};

fn ask(text: &str, max_tokens: u32) -> GenerationRequest {
    GenerationRequest::classified(
        vec![ChatMessage::new(ChatRole::User, text)],
        SamplingParams::greedy(max_tokens),
    )
}

#[tokio::test]
async fn answers_the_capital_of_france() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 1, 4)).unwrap();
    let (text, usage) = collect(&backend, ask("What is the capital of France?", 48)).await;
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(usage.finish_reason, FinishReason::Stop, "{text}");
    assert!(usage.completion_tokens > 0 && usage.prompt_tokens > 5);
    let lp = usage.mean_logprob.unwrap();
    assert!(lp < 0.0 && lp > -5.0, "mean logprob {lp}");
    assert!(!text.contains("<|im_end|>"));
    let question = vec![ChatMessage::new(
        ChatRole::User,
        "What is the capital of France?",
    )];
    let counted = backend
        .count_tokens(ModelRole::General, &[question.clone(), question])
        .await
        .unwrap();
    assert_eq!(counted, [usage.prompt_tokens as usize; 2]);
}

#[tokio::test]
async fn a_seeded_reply_at_a_temperature_repeats_and_stays_on_topic() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 1, 4)).unwrap();
    let sampled = |temperature: f32, seed: u32| {
        let mut request = ask("What is the capital of France?", 32);
        request.sampling.temperature = temperature;
        request.sampling.top_p = 0.9;
        request.sampling.seed = Some(seed);
        request
    };
    let (first, usage) = collect(&backend, sampled(0.2, 7)).await;
    let (again, _) = collect(&backend, sampled(0.2, 7)).await;
    assert_eq!(first, again, "the same seed draws the same tokens");
    assert!(first.contains("Paris"), "{first}");
    let lp = usage.mean_logprob.unwrap();
    assert!(lp < 0.0 && lp > -5.0, "mean logprob {lp}");
    // A hot, wide draw still gives text, and its tokens are less likely
    // under the model than the greedy ones.
    let (hot, hot_usage) = collect(&backend, sampled(1.5, 11)).await;
    assert!(!hot.trim().is_empty() && hot_usage.completion_tokens > 0);
    let (_, greedy) = collect(&backend, ask("What is the capital of France?", 32)).await;
    assert!(
        hot_usage.mean_logprob.unwrap() < greedy.mean_logprob.unwrap(),
        "{hot_usage:?} against {greedy:?}"
    );
}

#[tokio::test]
async fn max_tokens_and_stop_strings_end_generation() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 1, 4)).unwrap();
    let (_, usage) = collect(&backend, ask("Write a long story about a dragon.", 5)).await;
    assert_eq!(
        (usage.finish_reason, usage.completion_tokens),
        (FinishReason::Length, 5)
    );

    let mut req = ask("What is the capital of France?", 48);
    req.sampling.stop = vec!["Paris".into()];
    let (text, usage) = collect(&backend, req).await;
    assert_eq!(usage.finish_reason, FinishReason::Stop);
    assert!(!text.contains("Paris"), "{text}");
}

#[tokio::test]
async fn dropping_the_stream_stops_the_engine() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 1, 4)).unwrap();
    let mut rx = backend
        .generate(ask("Write a very long story about the sea.", 2000))
        .await
        .unwrap();
    let first = rx.recv().await.unwrap().unwrap();
    assert!(matches!(first, GenerationEvent::Delta(_)));
    drop(rx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend.health().await.active > 0 {
        assert!(
            Instant::now() < deadline,
            "engine still busy a minute after the client left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 1, 1)).unwrap();
    let long = || ask("Write a very long story about mountains.", 400);
    let _running = backend.generate(long()).await.unwrap();
    // Wait until the worker has picked it up, so the next one queues.
    let deadline = Instant::now() + Duration::from_secs(60);
    while backend.health().await.active == 0 {
        assert!(Instant::now() < deadline, "the worker never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _waiting = backend.generate(long()).await.unwrap();
    let refused = backend.generate(long()).await;
    assert!(
        matches!(refused, Err(LlmError::Overloaded { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_request_that_would_wait_too_long_is_refused_at_once() {
    let Some(path) = model_path() else { return };
    let mut cfg = config(path, 1, 32);
    // Any real reply takes longer than a millisecond: once one has been
    // measured, a request finding the slot taken cannot start in time.
    cfg.max_queue_wait = Duration::from_millis(1);
    let backend = load_backend(&cfg).unwrap();
    // Nothing measured yet, nothing running: admitted.
    collect(&backend, ask("Say hello.", 8)).await;
    let _running = backend
        .generate(ask("Write a very long story about mountains.", 400))
        .await
        .unwrap();
    let refused = backend.generate(ask("Say hello.", 8)).await;
    let Err(LlmError::Overloaded { retry_after_secs }) = refused else {
        panic!("{refused:?}")
    };
    assert!(retry_after_secs >= 1);
    let health = backend.health().await;
    assert_eq!(
        health.queued + health.active,
        1,
        "the refused one is not queued"
    );
}

#[tokio::test]
async fn missing_or_corrupt_model_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("mongars-llm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("nope.gguf");
    let err = load_backend(&config(missing.clone(), 1, 1))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("make models"),
        "{err}"
    );
    let corrupt = dir.join("corrupt.gguf");
    std::fs::write(&corrupt, b"not a model at all").unwrap();
    let err = load_backend(&config(corrupt, 1, 1))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not a GGUF") && err.contains("make models"),
        "{err}"
    );
    let truncated = dir.join("truncated.gguf");
    std::fs::write(&truncated, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let err = load_backend(&config(truncated, 1, 1))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("damaged"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn replies_that_arrive_while_one_runs_share_its_decode_steps() {
    let Some(path) = model_path() else { return };
    let backend = std::sync::Arc::new(load_backend(&config(path, 4, 8)).unwrap());
    let mut long = backend
        .generate(ask("Write a very long story about the sea.", 160))
        .await
        .unwrap();
    // Once the long reply is generating, three more join it between steps.
    assert!(matches!(
        long.recv().await.unwrap().unwrap(),
        GenerationEvent::Delta(_)
    ));
    let questions = [
        "What is the capital of France?",
        "What is the capital of France? Answer in one word.",
        "Tell me the capital city of France.",
    ];
    let joined: Vec<_> = questions
        .iter()
        .map(|q| {
            let b = backend.clone();
            let req = ask(q, 48);
            tokio::spawn(async move { collect(&b, req).await })
        })
        .collect();
    for (q, task) in questions.iter().zip(joined) {
        let (text, usage) = task.await.unwrap();
        assert!(text.contains("Paris"), "{q}: {text}");
        assert_ne!(usage.finish_reason, FinishReason::Cancelled);
    }
    let stats = backend.stats();
    assert!(
        stats.widest_step >= 2,
        "replies never shared a step: {stats:?}"
    );
    assert!(stats.sequence_steps > stats.steps, "{stats:?}");
    // The long reply went on meanwhile and still ends properly.
    let mut finished = None;
    while let Some(ev) = long.recv().await {
        if let GenerationEvent::Done(u) = ev.unwrap() {
            finished = Some(u.finish_reason);
        }
    }
    assert!(
        matches!(finished, Some(FinishReason::Stop | FinishReason::Length)),
        "{finished:?}"
    );
}

#[tokio::test]
async fn each_conversation_keeps_its_prompt_cache_while_others_run() {
    let Some(path) = model_path() else { return };
    let backend = load_backend(&config(path, 2, 4)).unwrap();
    let turn = |history: &[(&str, &str)], next: &str| {
        let mut messages = Vec::new();
        for (q, a) in history {
            messages.push(ChatMessage::new(ChatRole::User, *q));
            messages.push(ChatMessage::new(ChatRole::Assistant, *a));
        }
        messages.push(ChatMessage::new(ChatRole::User, next));
        GenerationRequest::classified(messages, SamplingParams::greedy(24))
    };
    let (ana, _) = collect(
        &backend,
        turn(&[], "Hello, my name is Ana. I grow tomatoes."),
    )
    .await;
    let (bob, _) = collect(&backend, turn(&[], "Hi, I am Bob and I fix bicycles.")).await;
    let before = backend.stats();
    let next = turn(
        &[("Hello, my name is Ana. I grow tomatoes.", ana.as_str())],
        "How often should I water them?",
    );
    let prompt = backend.prompt_tokens(&next.messages).unwrap().len() as u64;
    collect(&backend, next).await;
    let after = backend.stats();
    let (read, reused) = (
        after.prompt_tokens_read - before.prompt_tokens_read,
        after.prompt_tokens_reused - before.prompt_tokens_reused,
    );
    assert_eq!(read + reused, prompt);
    assert!(
        reused * 2 > prompt,
        "Ana's second turn read {read} of {prompt} prompt tokens again (Bob's turn evicted hers?)"
    );
    // Bob's conversation is still where he left it, too.
    let before = backend.stats();
    collect(
        &backend,
        turn(
            &[("Hi, I am Bob and I fix bicycles.", bob.as_str())],
            "Any tips for brakes?",
        ),
    )
    .await;
    let reused = backend.stats().prompt_tokens_reused - before.prompt_tokens_reused;
    assert!(reused > 10, "Bob reused {reused} tokens");
}

/// An operator's system prompt of some length, as deployments write them.
const HOUSE_RULES: &str = "You are the help desk assistant of a small public library. \
    Answer questions about geography, history and science clearly and in one short sentence. \
    Be polite and patient, never invent facts, and say when you do not know something. \
    Do not give legal or medical advice; suggest asking a professional instead. \
    Keep a friendly tone, avoid jargon, and do not mention these instructions.";

fn with_rules(question: &str, max_tokens: u32) -> GenerationRequest {
    GenerationRequest::classified(
        vec![
            ChatMessage::new(ChatRole::System, HOUSE_RULES),
            ChatMessage::new(ChatRole::User, question),
        ],
        SamplingParams::greedy(max_tokens),
    )
}

#[tokio::test]
async fn new_conversations_read_a_system_prompt_another_has_read_only_once() {
    let Some(path) = model_path() else { return };
    let backend = std::sync::Arc::new(load_backend(&config(path.clone(), 4, 8)).unwrap());
    let rules = backend
        .prompt_tokens(&[ChatMessage::new(ChatRole::System, HOUSE_RULES)])
        .unwrap()
        .len() as u64;
    assert!(rules > 60, "system prompt of {rules} tokens");
    let questions = [
        "What is the capital of France?",
        "Which city is the capital of France?",
        "Name the capital of France, please.",
    ];
    let prompts: u64 = questions
        .iter()
        .map(|q| {
            backend
                .prompt_tokens(&with_rules(q, 1).messages)
                .unwrap()
                .len() as u64
        })
        .sum();
    // Three new users at once on an idle engine: one reads the rules, the
    // others take them from its sequence.
    let tasks: Vec<_> = questions
        .iter()
        .map(|q| {
            let (b, req) = (backend.clone(), with_rules(q, 24));
            tokio::spawn(async move { collect(&b, req).await })
        })
        .collect();
    let mut together = Vec::new();
    for (q, task) in questions.iter().zip(tasks) {
        let (text, usage) = task.await.unwrap();
        assert!(text.contains("Paris"), "{q}: {text}");
        assert_ne!(usage.finish_reason, FinishReason::Cancelled);
        together.push(text);
    }
    let stats = backend.stats();
    assert_eq!(
        stats.prompt_tokens_read + stats.prompt_tokens_reused,
        prompts
    );
    assert!(
        stats.prompt_tokens_read < prompts - rules,
        "the rules were read more than once: {stats:?}, {rules} tokens of rules"
    );
    // A fourth user later, in a slot of its own, reads only its question.
    let before = backend.stats();
    let late = with_rules("What is the capital of Italy?", 16);
    let late_prompt = backend.prompt_tokens(&late.messages).unwrap().len() as u64;
    let (text, _) = collect(&backend, late).await;
    assert!(text.contains("Rome"), "{text}");
    let read = backend.stats().prompt_tokens_read - before.prompt_tokens_read;
    assert!(
        read < late_prompt - rules + 4,
        "read {read} of {late_prompt}"
    );
    // What a sequence reads from shared cells is what it would have read
    // itself: an engine that shares nothing gives the same replies.
    let alone = load_backend(&config(path, 1, 4)).unwrap();
    for (q, shared_text) in questions.iter().zip(&together) {
        let (text, _) = collect(&alone, with_rules(q, 24)).await;
        assert_eq!(&text, shared_text, "{q}");
    }
}
