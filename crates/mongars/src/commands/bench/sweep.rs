//! `mongars bench generate`, concurrent part: 1, 2, 4 and 8 replies at once
//! on the embedded engine (one batch per decode step), side by side with a
//! plain llama-cpp-2 loop that decodes the same prompts as sequences of one
//! batch (the ceiling), on the same model and threads. First with prompts
//! that differ from their first line (nothing to share), then as new users
//! arrive on a server: one operator's system prompt, each their own question;
//! last, one user arriving while others' replies are under way.

use super::pct;
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::domain::{
    ChatMessage, ChatRole, GenerationEvent, GenerationRequest, SamplingParams,
};
use mongars_core::ports::{LlmBackend, read_to_end};
use mongars_llm::embedded::{EmbeddedBackend, load_backend, raw_batched_greedy};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAMS: [usize; 4] = [1, 2, 4, 8];

/// Figures of one run of `n` streams.
#[derive(Default)]
struct Run {
    /// All tokens over the time to the last one.
    aggregate: f64,
    /// Each stream's decode rate after its first token.
    per_stream: Vec<f64>,
    /// Each stream's time to first token, ms.
    ttft: Vec<f64>,
}

/// A system prompt of the length operators write (about 90 tokens).
const RULES: &str = "You are the help desk assistant of a small public library. \
    Answer questions about books, opening hours, events and local history clearly and briefly. \
    Be polite and patient, never invent facts, and say when you do not know something. \
    Do not give legal or medical advice; suggest asking a professional instead. \
    Keep a friendly tone, avoid jargon, and do not mention these instructions.";

const TOPICS: [&str; 8] = [
    "lighthouses",
    "bicycles",
    "tomatoes",
    "volcanoes",
    "violins",
    "glaciers",
    "honeybees",
    "telescopes",
];

/// A new user's first message under the operator's system prompt.
fn new_user(tag: &str, i: usize) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(ChatRole::System, RULES),
        ChatMessage::new(
            ChatRole::User,
            format!(
                "Reader {tag}: do you have a good book about {}? Tell me what it covers.",
                TOPICS[i % TOPICS.len()]
            ),
        ),
    ]
}

fn messages(tag: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            ChatRole::System,
            format!("Session {tag}. You tell short stories."),
        ),
        ChatMessage::new(
            ChatRole::User,
            "Write a short story about a lighthouse keeper who finds a message in a bottle.",
        ),
    ]
}

pub async fn run(settings: &Settings, tokens: u32, runs: u32) -> anyhow::Result<()> {
    let mut cfg = crate::wiring::llm::embedded_config(settings);
    cfg.parallel = *STREAMS.last().unwrap_or(&8);
    cfg.queue_capacity = cfg.queue_capacity.max(cfg.parallel);
    // Every stream of a sweep is served, however long it waits.
    cfg.max_queue_wait = std::time::Duration::ZERO;
    let threads = cfg.threads;
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || load_backend(&cfg))
            .await?
            .context("llm.embedded.model_path")?,
    );
    println!();
    println!(
        "concurrent replies: engine with parallel = 8 and {threads} threads in all, against a raw \
         llama-cpp-2 loop decoding the same prompts as one batch; {tokens} tokens each, greedy, \
         {runs} runs each, medians"
    );
    println!(
        "  (ratio: engine / raw of the medians; in brackets the lowest and highest of each run's \
         engine / raw, the two measured one after the other)"
    );
    println!(
        "{:>8} {:>14} {:>12} {:>7} {:>13} {:>16} {:>14} {:>12}",
        "streams",
        "engine tok/s",
        "raw tok/s",
        "ratio",
        "run ratios",
        "per stream tok/s",
        "engine TTFT ms",
        "raw TTFT ms"
    );
    let mut table = Vec::new();
    for n in STREAMS {
        let (mut eng, mut raw) = (Vec::new(), Vec::new());
        for r in 0..runs.max(1) {
            let tag = |i: usize| format!("{n}-{r}-{i}");
            let order = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for raw_turn in order {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if raw_turn {
                    let prompts = (0..n)
                        .map(|i| engine.prompt_tokens(&messages(&format!("raw {}", tag(i)))))
                        .collect::<Result<Vec<_>, _>>()?;
                    let e = engine.clone();
                    raw.push(
                        tokio::task::spawn_blocking(move || raw_run(&e, &prompts, tokens))
                            .await??,
                    );
                } else {
                    eng.push(engine_run(&engine, n, tokens, &|i| messages(&tag(i))).await?);
                }
            }
        }
        let ea = median(&eng, &|x| x.aggregate);
        let ra = median(&raw, &|x| x.aggregate);
        let es = median(&eng, &|x| pct(&x.per_stream, 50.0));
        let et = median(&eng, &|x| pct(&x.ttft, 50.0));
        let rt = median(&raw, &|x| pct(&x.ttft, 50.0));
        let pairs: Vec<f64> = eng
            .iter()
            .zip(&raw)
            .map(|(e, r)| e.aggregate / r.aggregate)
            .collect();
        let spread = format!("({:.2}-{:.2})", pct(&pairs, 0.0), pct(&pairs, 100.0));
        println!(
            "{n:>8} {ea:>14.1} {ra:>12.1} {:>7.3} {spread:>13} {es:>16.1} {et:>14.0} {rt:>12.0}",
            ea / ra
        );
        table.push((n, ea, et));
    }
    let one = table[0];
    for (n, agg, ttft) in &table[1..] {
        println!(
            "  {n} streams: aggregate {:.2}x one stream's, time to first token {:.2}x one stream's",
            agg / one.1,
            ttft / one.2
        );
    }
    let stats = engine.stats();
    println!(
        "  engine: {} decode steps, {:.2} replies per step on average, at most {}",
        stats.steps,
        stats.sequence_steps as f64 / stats.steps.max(1) as f64,
        stats.widest_step
    );
    new_users(&engine, tokens, runs).await?;
    arriving(&engine, runs).await
}

/// New users arriving together under one system prompt, after the server
/// has answered someone (so the system prompt is in its context): the
/// engine reads only each user's question, the raw loop every whole prompt.
async fn new_users(engine: &Arc<EmbeddedBackend>, tokens: u32, runs: u32) -> anyhow::Result<()> {
    let rules = engine
        .prompt_tokens(&[ChatMessage::new(ChatRole::System, RULES)])?
        .len();
    let whole = engine.prompt_tokens(&new_user("0-0", 0))?.len();
    println!();
    println!(
        "new users at once under one system prompt ({rules} of {whole} prompt tokens), \
         after an earlier user; {tokens} tokens each, medians"
    );
    println!(
        "{:>8} {:>14} {:>12} {:>14} {:>12} {:>20}",
        "streams",
        "engine tok/s",
        "raw tok/s",
        "engine TTFT ms",
        "raw TTFT ms",
        "prompt read / reply"
    );
    engine_run(engine, 1, 1, &|i| new_user("warm", i)).await?;
    let mut ttft_of = Vec::new();
    for n in [1, 4] {
        let (mut eng, mut raw, mut read) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..runs.max(1) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let tag = format!("{n}-{r}");
            let before = engine.stats().prompt_tokens_read;
            eng.push(engine_run(engine, n, tokens, &|i| new_user(&tag, i)).await?);
            read.push((engine.stats().prompt_tokens_read - before) as f64 / n as f64);
            tokio::time::sleep(Duration::from_millis(300)).await;
            let prompts = (0..n)
                .map(|i| engine.prompt_tokens(&new_user(&format!("raw {tag}"), i)))
                .collect::<Result<Vec<_>, _>>()?;
            let e = engine.clone();
            raw.push(tokio::task::spawn_blocking(move || raw_run(&e, &prompts, tokens)).await??);
        }
        let et = median(&eng, &|x| pct(&x.ttft, 50.0));
        println!(
            "{n:>8} {:>14.1} {:>12.1} {et:>14.0} {:>12.0} {:>20.1}",
            median(&eng, &|x| x.aggregate),
            median(&raw, &|x| x.aggregate),
            median(&raw, &|x| pct(&x.ttft, 50.0)),
            pct(&read, 50.0)
        );
        ttft_of.push(et);
    }
    println!(
        "  4 new users: time to first token {:.2}x one new user's",
        ttft_of[1] / ttft_of[0]
    );
    Ok(())
}

/// One user arriving while others' replies are under way, as on a busy
/// server: the newcomer's time to first token next to the same arrival on
/// an idle engine. Their prompt is read in the next step, beside the
/// others' next tokens, rather than after the others' prompts.
async fn arriving(engine: &Arc<EmbeddedBackend>, runs: u32) -> anyhow::Result<()> {
    println!();
    println!(
        "one user arriving while others generate (their prompts read, replies under way); \
         the newcomer's time to first token, medians of {} runs",
        runs.max(1)
    );
    println!(
        "{:>18} {:>14} {:>8} {:>26}",
        "others generating", "TTFT ms", "x idle", "fewest still generating"
    );
    let mut idle = f64::NAN;
    for busy in [0usize, 1, 3, 7] {
        let (mut ttft, mut fewest) = (Vec::new(), busy);
        for r in 0..runs.max(1) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The others arrive together; each is under way once its first
            // token is out, and is kept reading until cancelled below.
            let mut streams = Vec::new();
            for i in 0..busy {
                let request = GenerationRequest::classified(
                    messages(&format!("busy {busy}-{r}-{i}")),
                    SamplingParams::greedy(1024),
                );
                streams.push(engine.generate(request).await?);
            }
            let mut others = Vec::new();
            for mut rx in streams {
                match rx.recv().await {
                    Some(Ok(GenerationEvent::Delta(_))) => {}
                    other => anyhow::bail!("a background reply ended early: {other:?}"),
                }
                others.push(tokio::spawn(async move {
                    while let Some(Ok(GenerationEvent::Delta(_))) = rx.recv().await {}
                }));
            }
            let request = GenerationRequest::classified(
                messages(&format!("new {busy}-{r}")),
                SamplingParams::greedy(4),
            );
            let (_, u) = read_to_end(engine.generate(request).await?).await?;
            ttft.push(u.time_to_first_token.as_secs_f64() * 1000.0);
            // Still generating when the newcomer's short reply ended, so all
            // through its prompt.
            let running = others.iter().filter(|o| !o.is_finished()).count();
            fewest = fewest.min(running);
            // Dropping a stream cancels its reply at the next step.
            for o in &others {
                o.abort();
            }
            while engine.health().await.active > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let t = pct(&ttft, 50.0);
        if busy == 0 {
            idle = t;
        }
        println!("{busy:>18} {t:>14.0} {:>8.2} {fewest:>26}", t / idle);
    }
    Ok(())
}

/// The median over `runs` of one figure of each.
fn median(runs: &[Run], f: &dyn Fn(&Run) -> f64) -> f64 {
    pct(&runs.iter().map(f).collect::<Vec<_>>(), 50.0)
}

async fn engine_run(
    engine: &Arc<EmbeddedBackend>,
    n: usize,
    tokens: u32,
    messages: &dyn Fn(usize) -> Vec<ChatMessage>,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let engine = engine.clone();
            let request =
                GenerationRequest::classified(messages(i), SamplingParams::greedy(tokens));
            tokio::spawn(async move {
                let (_, u) = read_to_end(engine.generate(request).await?).await?;
                anyhow::Ok((u, Instant::now()))
            })
        })
        .collect();
    let mut run = Run::default();
    let (mut total, mut last) = (0u32, started);
    for t in tasks {
        let (u, done) = t.await??;
        total += u.completion_tokens;
        last = last.max(done);
        let decode = u.total.saturating_sub(u.time_to_first_token);
        run.per_stream
            .push(f64::from(u.completion_tokens.saturating_sub(1)) / decode.as_secs_f64());
        run.ttft.push(u.time_to_first_token.as_secs_f64() * 1000.0);
    }
    run.aggregate = f64::from(total) / last.duration_since(started).as_secs_f64();
    Ok(run)
}

fn raw_run(
    engine: &EmbeddedBackend,
    prompts: &[Vec<mongars_llm::embedded::LlamaToken>],
    tokens: u32,
) -> anyhow::Result<Run> {
    let r = raw_batched_greedy(engine, prompts, tokens)?;
    let end = r.finished.iter().max().copied().unwrap_or_default();
    let total: u32 = r.tokens.iter().sum();
    Ok(Run {
        aggregate: f64::from(total) / end.as_secs_f64(),
        per_stream: (0..r.tokens.len())
            .map(|i| {
                let decode = r.finished[i].saturating_sub(r.time_to_first_token[i]);
                f64::from(r.tokens[i].saturating_sub(1)) / decode.as_secs_f64()
            })
            .collect(),
        ttft: r
            .time_to_first_token
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect(),
    })
}
