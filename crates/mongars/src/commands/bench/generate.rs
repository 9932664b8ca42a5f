//! `mongars bench generate`: the embedded engine against the plain
//! llama-cpp-2 decode loop on the same model, prompt and threads, then the
//! pipeline's own cost around generation with 1,000 stored turns, the
//! concurrent-stream sweep (`sweep`) and the turn at which a history window
//! moves (`moves`).

use super::args::{GenerateArgs, GeneratePart};
use super::{ScratchDb, ms, pct, unthrottled};
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::conversation::ChatRequest;
use mongars_core::domain::{
    ChatMessage, ChatRole, GenerationRequest, NewTurn, SamplingParams, TurnCompletion,
};
use mongars_core::ports::{LlmBackend, TurnRepository, read_to_end};
use mongars_llm::embedded::{EmbeddedBackend, load_backend, raw_greedy_decode, raw_sampling_cost};
use mongars_store::SqlTurnRepository;
use std::sync::Arc;
use std::time::Duration;

const PROMPT: &str =
    "Write a short story about a lighthouse keeper who finds a message in a bottle.";

pub async fn run(settings: Settings, args: GenerateArgs) -> anyhow::Result<i32> {
    let part = |p: GeneratePart| args.only.is_none_or(|o| o == p);
    let mut verdict = 0;
    if part(GeneratePart::Single) || part(GeneratePart::Pipeline) {
        let mut cfg = crate::wiring::llm::embedded_config(&settings);
        cfg.parallel = 1;
        let threads = cfg.threads;
        let engine = Arc::new(
            tokio::task::spawn_blocking(move || load_backend(&cfg))
                .await?
                .context("llm.embedded.model_path")?,
        );
        if part(GeneratePart::Single) {
            single(&engine, threads, &args).await?;
        }
        if part(GeneratePart::Pipeline) {
            verdict = pipeline(engine, &settings, args.turns).await?;
        }
    }
    if part(GeneratePart::Sweep) {
        super::sweep::run(&settings, args.tokens, args.runs).await?;
    }
    if part(GeneratePart::Weights) {
        super::weights::run(&settings, args.tokens, args.runs).await?;
    }
    if part(GeneratePart::Moves) {
        super::moves::run(&settings, args.runs * 2).await?;
    }
    Ok(verdict)
}

/// One reply at a time: the engine against the raw loop, alternating.
async fn single(
    engine: &Arc<EmbeddedBackend>,
    threads: usize,
    args: &GenerateArgs,
) -> anyhow::Result<()> {
    // Each run gets its own opening, so the engine's prompt cache cannot help
    // it: both sides read the whole prompt.
    let run_messages = |run: u32| {
        vec![
            ChatMessage::new(
                ChatRole::System,
                format!("Session {run}. You tell short stories."),
            ),
            ChatMessage::new(ChatRole::User, PROMPT),
        ]
    };
    let first_prompt = engine.prompt_tokens(&run_messages(0))?;
    let prompt_len = first_prompt.len();
    println!(
        "model {}; {threads} threads; prompt {} tokens; {} tokens per run; {} runs each, alternating order",
        engine.model(),
        prompt_len,
        args.tokens,
        args.runs
    );

    let (mut raw_ttft, mut raw_rate, mut eng_ttft, mut eng_rate) = (vec![], vec![], vec![], vec![]);
    for run in 0..args.runs.max(1) {
        let messages = run_messages(run);
        let prompt = engine.prompt_tokens(&messages)?;
        // Alternate which goes first, with a pause between, so neither pays
        // for the other's idle OpenMP threads still spinning.
        for raw_turn in if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if raw_turn {
                let (e, p, n) = (engine.clone(), prompt.clone(), args.tokens);
                let raw =
                    tokio::task::spawn_blocking(move || raw_greedy_decode(&e, &p, n)).await??;
                raw_ttft.push(ms(raw.time_to_first_token));
                raw_rate.push(f64::from(raw.tokens - 1) / raw.decode.as_secs_f64());
            } else {
                let (ttft, rate) = engine_run(engine, &messages, args.tokens).await?;
                eng_ttft.push(ttft);
                eng_rate.push(rate);
            }
        }
    }
    let (rt, rr, et, er) = (
        pct(&raw_ttft, 50.0),
        pct(&raw_rate, 50.0),
        pct(&eng_ttft, 50.0),
        pct(&eng_rate, 50.0),
    );
    println!();
    println!(
        "{:<36} {:>14} {:>14} {:>8}",
        "", "raw llama-cpp-2", "monGARS engine", "ratio"
    );
    println!(
        "{:<36} {:>14.1} {:>14.1} {:>8.3}",
        "decode tokens/s (median)",
        rr,
        er,
        er / rr
    );
    println!(
        "{:<36} {:>14.1} {:>14.1} {:>8.3}",
        "time to first token, ms (median)",
        rt,
        et,
        et / rt
    );
    let (e, p) = (engine.clone(), first_prompt);
    let cost = tokio::task::spawn_blocking(move || raw_sampling_cost(&e, &p, 200)).await??;
    println!(
        "choosing a token from the same logits ({} entries), µs per token over 200 decoded tokens: greedy \
         llama.cpp {:.1}, engine {:.1} ({:.2}x); top-k 40, top-p 0.9, temperature 0.7: llama.cpp \
         {:.1}, engine {:.1} ({:.2}x); the engine's include the token's log-probability",
        cost.vocabulary,
        cost.llama_greedy,
        cost.engine_greedy,
        cost.engine_greedy / cost.llama_greedy,
        cost.llama_random,
        cost.engine_random,
        cost.engine_random / cost.llama_random
    );
    Ok(())
}

/// The pipeline's cost outside generation and the prompt cache across a
/// conversation's chats: 1 (the bench fails) when consecutive chats do not
/// find most of their prompt in the engine's cache, since every figure
/// would then hide a regression.
async fn pipeline(
    engine: Arc<EmbeddedBackend>,
    settings: &Settings,
    turns: u32,
) -> anyhow::Result<i32> {
    let figures = pipeline_overhead(engine, settings, turns).await?;
    let overhead = &figures.overhead_ms;
    println!();
    println!(
        "pipeline outside generation, {turns} stored turns: p50 {:.2} ms, p95 {:.2} ms ({} chats)",
        pct(overhead, 50.0),
        pct(overhead, 95.0),
        overhead.len()
    );
    let (cold, warm) = (figures.ttft_ms[0], pct(&figures.ttft_ms[1..], 50.0));
    println!(
        "time to first token with {} history turns in the prompt: first chat (cold) {cold:.0} ms, \
         following chats (prompt cache) p50 {warm:.0} ms; prompt tokens found in the cache: {:.0}%",
        settings.conversation.history_turns,
        figures.reused * 100.0
    );
    if figures.reused < 0.5 || warm > cold * 0.6 {
        eprintln!(
            "FAILED: the prompt cache did not serve consecutive chats ({:.0}% of prompt tokens \
             reused; first token after {warm:.0} ms against {cold:.0} ms cold)",
            figures.reused * 100.0
        );
        return Ok(1);
    }
    Ok(0)
}

/// Time to first token (ms) and decode rate (tokens/s) of one engine run.
async fn engine_run(
    engine: &EmbeddedBackend,
    messages: &[ChatMessage],
    tokens: u32,
) -> anyhow::Result<(f64, f64)> {
    let request = GenerationRequest::classified(messages.to_vec(), SamplingParams::greedy(tokens));
    let (_, u) = read_to_end(engine.generate(request).await?).await?;
    let decode = u.total.saturating_sub(u.time_to_first_token);
    let rate = f64::from(u.completion_tokens.saturating_sub(1)) / decode.as_secs_f64();
    Ok((ms(u.time_to_first_token), rate))
}

struct PipelineFigures {
    /// Per chat: time outside the backend (validation, history, prompt
    /// assembly with the real tokenizer, persistence), in ms.
    overhead_ms: Vec<f64>,
    /// Per chat: time to first token, in ms.
    ttft_ms: Vec<f64>,
    /// Share of the following chats' prompt tokens found in the cache.
    reused: f64,
}

async fn pipeline_overhead(
    engine: Arc<EmbeddedBackend>,
    settings: &Settings,
    turns: u32,
) -> anyhow::Result<PipelineFigures> {
    let scratch = ScratchDb::open("gen").await?;
    let db = &scratch.db;
    let who = scratch.user("bench").await?;
    seed_turns(&SqlTurnRepository::new(db.clone()), who.id, turns).await?;

    // The configured pipeline, with short replies and no rate limit.
    let settings = unthrottled(settings, 8);
    let clock = crate::wiring::system_clock();
    let (mind, _) = crate::wiring::mind::mind_from_settings(&settings, db, None, &clock)?;
    let after = mind.after.clone();
    let service = crate::wiring::conversation::conversation_service(
        &settings,
        db,
        engine.clone(),
        crate::wiring::conversation::local_limiter(&settings, &clock),
        mind,
        &clock,
    );
    let (mut overhead, mut ttft) = (Vec::new(), Vec::new());
    let mut before = engine.stats();
    for i in 0..30 {
        if i == 1 {
            before = engine.stats();
        }
        let req = ChatRequest {
            message: format!("Question number {i}: what should I read next?"),
            session_id: Some("bench".into()),
        };
        let reply = service.chat(&who, req).await?;
        overhead.push(reply.processing_time * 1000.0 - ms(reply.usage.total));
        ttft.push(ms(reply.usage.time_to_first_token));
    }
    after.settled().await;
    let after = engine.stats();
    let reused = (after.prompt_tokens_reused - before.prompt_tokens_reused) as f64;
    let read = (after.prompt_tokens_read - before.prompt_tokens_read) as f64;
    scratch.close().await;
    Ok(PipelineFigures {
        overhead_ms: overhead,
        ttft_ms: ttft,
        reused: reused / (reused + read).max(1.0),
    })
}

async fn seed_turns(repo: &dyn TurnRepository, user_id: i64, n: u32) -> anyhow::Result<()> {
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    for i in 0..n {
        let id = format!("seed-{i}");
        let at = start + chrono::Duration::seconds(i64::from(i) * 60);
        repo.start(NewTurn {
            id: id.clone(),
            user_id,
            session_id: Some("bench".into()),
            query: format!("Earlier question {i} about books and authors I might like"),
            created_at: at,
            owner: None,
            ordinals: Default::default(),
            trace: None,
            note: None,
        })
        .await?;
        let text = format!("An earlier answer number {i}, recommending a classic novel.");
        repo.complete(
            &id,
            &TurnCompletion {
                response: text.clone(),
                model: "seed".into(),
                prompt_tokens: 40,
                completion_tokens: 12,
                confidence: 0.6,
                ttft_ms: 10,
                generation_ms: 100,
                total_ms: 110,
                speech_turn: mongars_core::conversation::speech::plan(&id, &text, at, 1.0),
                completed_at: at,
                working_until: chrono::Utc::now() + chrono::Duration::days(1),
            },
        )
        .await?;
    }
    Ok(())
}
