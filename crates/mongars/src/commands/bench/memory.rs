//! `mongars bench memory`: vector recall over one user's memories (speed and
//! recall@10 against exact float search), embedding throughput of the
//! in-process model, and the reply latency of chat turns with memory on
//! next to memory off on the embedded engine.

use super::args::MemoryBenchArgs;
use super::{ScratchDb, ms, pct, unthrottled};
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::conversation::{ChatRequest, history_window};
use mongars_core::domain::MemoryKind;
use mongars_core::memory::VectorIndex;
use mongars_core::ports::{Embedder, dot, normalize};
use std::sync::Arc;
use std::time::Instant;

pub async fn run(settings: Settings, args: MemoryBenchArgs) -> anyhow::Result<i32> {
    index_figures(args.memories as usize, args.queries as usize);
    let embedder = crate::wiring::mind::embedder_from_settings(&settings).await?;
    embedding_figures(&settings, &embedder).await?;
    chat_figures(&settings, embedder, args.turns).await?;
    Ok(0)
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // Sum of uniforms: close enough to a normal for clustering.
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
    }

    fn unit(&mut self, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims)
            .map(|_| self.next() + self.next() + self.next())
            .collect();
        normalize(&mut v);
        v
    }

    fn near(&mut self, center: &[f32], spread: f32) -> Vec<f32> {
        let mut v: Vec<f32> = center
            .iter()
            .map(|c| c + spread * (self.next() + self.next() + self.next()))
            .collect();
        normalize(&mut v);
        v
    }
}

/// Memories drawn around topics, as a person's memories are, and queries
/// near existing memories.
fn index_figures(n: usize, queries: usize) {
    let dims = 384;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let topics: Vec<Vec<f32>> = (0..(n / 100).max(1)).map(|_| rng.unit(dims)).collect();
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|i| rng.near(&topics[i % topics.len()], 0.06))
        .collect();
    let started = Instant::now();
    let mut index = VectorIndex::new(dims);
    for (i, v) in vectors.iter().enumerate() {
        index.upsert(&format!("m{i}"), MemoryKind::Fact, v);
    }
    let build = started.elapsed();
    let (mut fast, mut exact, mut hits) = (Vec::new(), Vec::new(), 0usize);
    let query_set: Vec<Vec<f32>> = (0..queries)
        .map(|q| rng.near(&vectors[(q * 7919) % n], 0.05))
        .collect();
    let mut found = Vec::with_capacity(queries);
    for query in &query_set {
        let t = Instant::now();
        let got = index.search(query, 10, -1.0, &[MemoryKind::Fact, MemoryKind::Turn]);
        fast.push(ms(t.elapsed()));
        found.push(got);
    }
    // The exact scans run after, so they do not evict the index from the
    // caches between searches.
    for (query, got) in query_set.iter().zip(found) {
        let t = Instant::now();
        let mut all: Vec<(f32, usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (dot(v, query), i))
            .collect();
        all.select_nth_unstable_by(10, |a, b| b.0.total_cmp(&a.0));
        exact.push(ms(t.elapsed()));
        let truth: Vec<String> = all[..10].iter().map(|(_, i)| format!("m{i}")).collect();
        hits += got.iter().filter(|h| truth.contains(&h.id)).count();
    }
    println!("vector recall: {n} memories of one user, 384 dimensions, {queries} queries");
    println!(
        "  int8 index:          p50 {:.3} ms  p99 {:.3} ms  ({:.1} MiB, built in {:.0} ms)",
        pct(&fast, 50.0),
        pct(&fast, 99.0),
        index.vector_bytes() as f64 / (1 << 20) as f64,
        ms(build)
    );
    println!(
        "  exact f32 scan:      p50 {:.3} ms  p99 {:.3} ms  ({:.1} MiB)",
        pct(&exact, 50.0),
        pct(&exact, 99.0),
        (n * dims * 4) as f64 / (1 << 20) as f64
    );
    println!(
        "  recall@10 against exact search: {:.4}; speed-up at p50 {:.1}x",
        hits as f64 / (queries * 10) as f64,
        pct(&exact, 50.0) / pct(&fast, 50.0)
    );
}

/// Sentences as people write them to an assistant, varied enough that no
/// two in a run are the same.
fn bench_sentences() -> Vec<String> {
    let subjects = [
        "the project",
        "my sister",
        "the garden",
        "our servers",
        "the recipe",
        "this book",
    ];
    let verbs = [
        "needs",
        "reminds me of",
        "depends on",
        "was built for",
        "keeps breaking",
        "is better than",
    ];
    let objects = [
        "a quiet weekend",
        "the new release",
        "fresh basil",
        "the old database",
        "the last chapter",
        "a long walk by the sea",
    ];
    (0..216)
        .map(|i| {
            format!(
                "{} {} {}.",
                subjects[i % 6],
                verbs[(i / 6) % 6],
                objects[(i / 36) % 6]
            )
        })
        .collect()
}

/// Sentences per second of `embedder` at batch sizes 1, 8 and 32, and with
/// 8 callers asking for one sentence each at once.
async fn throughput(embedder: Arc<dyn Embedder>, sentences: &[String]) -> anyhow::Result<[f64; 4]> {
    embedder.embed(&sentences[..8]).await?; // warm up
    let mut out = [0.0; 4];
    for (slot, batch) in [1usize, 8, 32].into_iter().enumerate() {
        let take = if batch == 1 { 64 } else { sentences.len() };
        let t = Instant::now();
        for chunk in sentences[..take].chunks(batch) {
            embedder.embed(chunk).await?;
        }
        out[slot] = take as f64 / t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let callers: Vec<_> = sentences
        .chunks(sentences.len() / 8)
        .take(8)
        .map(|mine| {
            let (embedder, mine) = (embedder.clone(), mine.to_vec());
            tokio::spawn(async move {
                for s in &mine {
                    embedder.embed(std::slice::from_ref(s)).await?;
                }
                anyhow::Ok(mine.len())
            })
        })
        .collect();
    let mut done = 0;
    for c in callers {
        done += c.await??;
    }
    out[3] = done as f64 / t.elapsed().as_secs_f64();
    Ok(out)
}

async fn embedding_figures(
    settings: &Settings,
    embedder: &Arc<dyn Embedder>,
) -> anyhow::Result<()> {
    let sentences = bench_sentences();
    println!();
    if settings.embeddings.kind != mongars_config::EmbedderKind::Embedded {
        let [one, eight, many, _] = throughput(embedder.clone(), &sentences).await?;
        println!(
            "embeddings ({}): {one:.0} sentences/s one at a time, {eight:.0} in batches of 8, {many:.0} in batches of 32",
            embedder.model()
        );
        return Ok(());
    }
    // The in-process model on candle's products (the baseline) and on the
    // packed kernel in each precision, without the cache (every sentence is
    // new to it), side by side in this run: every round measures each in
    // turn, starting with a different one, and the table gives medians, so
    // that a neighbour's load on a shared machine falls on all of them.
    use mongars_embed::{Kernel, Precision};
    let options = |kernel, precision| mongars_embed::MiniLmOptions {
        kernel,
        precision,
        cache_entries: 0,
        batch_size: 32,
        ..mongars_embed::MiniLmOptions::new(settings.embeddings.model_dir.clone())
    };
    let encoders = [
        ("candle f32", Kernel::Candle, Precision::F32),
        ("f32", Kernel::Packed, Precision::F32),
        ("f16", Kernel::Packed, Precision::F16),
        ("int8", Kernel::Packed, Precision::Int8),
        ("bf16", Kernel::Packed, Precision::Bf16),
    ];
    let mut models = Vec::new();
    for (_, kernel, precision) in encoders {
        models.push(Arc::new(mongars_embed::MiniLm::load(&options(
            kernel, precision,
        ))?));
    }
    let mut figures = vec![Vec::new(); encoders.len()];
    for round in 0..EMBED_ROUNDS {
        for i in 0..encoders.len() {
            let which = (i + round) % encoders.len();
            figures[which].push(throughput(models[which].clone(), &sentences).await?);
        }
    }
    println!(
        "embeddings (all-MiniLM-L6-v2 in-process, sentences/s, medians of {EMBED_ROUNDS} rounds; 8 callers: one sentence each, at once):"
    );
    println!(
        "  {:<12} {:>9} {:>11} {:>12} {:>10} {:>14}",
        "encoder", "one", "batch of 8", "batch of 32", "8 callers", "mean batch"
    );
    let rows: Vec<[f64; 4]> = figures
        .iter()
        .map(|runs| {
            std::array::from_fn(|c| pct(&runs.iter().map(|r| r[c]).collect::<Vec<_>>(), 50.0))
        })
        .collect();
    for ((name, _, _), (row, model)) in encoders.iter().zip(rows.iter().zip(&models)) {
        let stats = model.stats();
        let [one, eight, many, callers] = row;
        println!(
            "  {name:<12} {one:>9.0} {eight:>11.0} {many:>12.0} {callers:>10.0} {:>14.2}",
            stats.texts as f64 / stats.forwards.max(1) as f64
        );
    }
    for (i, (name, _, _)) in encoders.iter().enumerate().skip(1) {
        let ratio = |c: usize| rows[i][c] / rows[0][c];
        println!(
            "  {name} / candle f32: one {:.2}x, batch of 8 {:.2}x, batch of 32 {:.2}x, 8 callers {:.2}x",
            ratio(0),
            ratio(1),
            ratio(2),
            ratio(3)
        );
    }
    Ok(())
}

/// Rounds of the embedding throughput table.
const EMBED_ROUNDS: usize = 5;

async fn chat_figures(
    settings: &Settings,
    embedder: Arc<dyn Embedder>,
    turns: u32,
) -> anyhow::Result<()> {
    let scratch = ScratchDb::open("mem").await?;
    let db = &scratch.db;
    let settings = unthrottled(settings, 64);
    let metrics = mongars_metrics::Metrics::new();
    let clock = crate::wiring::system_clock();
    let llm: Arc<dyn mongars_core::ports::LlmBackend> =
        crate::wiring::llm::router_from_settings(&settings, None, &metrics, &clock)
            .await
            .context("generation backend")?;
    let who = [
        scratch.user("with-memory").await?,
        scratch.user("without-memory").await?,
    ];
    let (mind, _) = crate::wiring::mind::mind_from_settings(&settings, db, Some(embedder), &clock)?;
    let memory = mind.memory.clone().context("memory.enabled is off")?;
    let limiter = || crate::wiring::conversation::local_limiter(&settings, &clock);
    let on = crate::wiring::conversation::conversation_service(
        &settings,
        db,
        llm.clone(),
        limiter(),
        mind.clone(),
        &clock,
    );
    let mut plain = mind.clone();
    (plain.memory, plain.personality) = (None, None);
    let off = crate::wiring::conversation::conversation_service(
        &settings,
        db,
        llm,
        limiter(),
        plain,
        &clock,
    );
    // Give the remembering user something to recall.
    for (i, fact) in [
        "My name is Ana.",
        "I work on the Orion project.",
        "I live in Lisbon.",
        "I love green tea.",
    ]
    .iter()
    .enumerate()
    {
        memory
            .learn(who[0].id, &format!("seed-{i}"), fact, "Noted.", None)
            .await?;
    }
    let (mut t_on, mut t_off, mut pre_on, mut pre_off) = (vec![], vec![], vec![], vec![]);
    let mut tokens: [Vec<f64>; 2] = [vec![], vec![]];
    let mut replies: [Vec<f64>; 2] = [vec![], vec![]];
    let mut firsts: [Vec<f64>; 2] = [vec![], vec![]];
    let mut before_first: [[Vec<f64>; 2]; 2] = Default::default();
    // Turns once the history window's start has moved (it no longer holds
    // every earlier turn), when old notes are no longer replayed.
    let mut after_move: [Vec<f64>; 2] = Default::default();
    // The turns at which the window's start moved.
    let mut at_move: [Vec<f64>; 2] = Default::default();
    let history_turns = settings.conversation.history_turns;
    // The first turn of the window once `n` turns are complete.
    let start = |n: u64| n - u64::from(history_window(n, history_turns));
    const QUESTIONS: [&str; 10] = [
        "What should I read this weekend?",
        "How do I keep basil alive indoors?",
        "Can you suggest a name for my project's next release?",
        "What is a good way to learn Portuguese?",
        "How long should I steep green tea?",
        "Give me an idea for a short walk near the sea.",
        "What is the difference between a list and a tuple?",
        "How can I sleep better?",
        "Suggest a quick dinner for tonight.",
        "What should I pack for a weekend trip?",
    ];
    // Each side holds whole conversations in turn, as one person would, so
    // the engine's prompt cache serves each as it would in use; two rounds
    // in opposite order even out drift.
    let half = turns.max(2) / 2;
    let plan = (0..2u32).flat_map(|round| {
        let order = if round == 0 {
            [true, false]
        } else {
            [false, true]
        };
        order
            .into_iter()
            .flat_map(move |memory_on| (0..half).map(move |i| (round, memory_on, i)))
    });
    for (round, memory_on, i) in plan {
        let message = QUESTIONS[(i as usize + round as usize * 5) % QUESTIONS.len()].to_string();
        {
            let (service, user) = if memory_on {
                (&on, &who[0])
            } else {
                (&off, &who[1])
            };
            let req = ChatRequest {
                message: message.clone(),
                session_id: Some(format!("round-{round}")),
            };
            let reply = service.chat(user, req).await?;
            let total = reply.processing_time * 1000.0;
            let outside = total - ms(reply.usage.total);
            let side = usize::from(!memory_on);
            tokens[side].push(f64::from(reply.usage.prompt_tokens));
            let to_first = outside + ms(reply.usage.time_to_first_token);
            before_first[side][round as usize].push(to_first);
            let complete = u64::from(i);
            if start(complete) > 0 {
                after_move[side].push(to_first);
            }
            if complete > 0 && start(complete) > start(complete - 1) {
                at_move[side].push(to_first);
            }
            replies[side].push(f64::from(reply.usage.completion_tokens));
            firsts[side].push(ms(reply.usage.time_to_first_token));
            if memory_on {
                t_on.push(total);
                pre_on.push(outside);
                // Learning runs after the reply; let it finish before the
                // next turn, as a person's think time would.
                memory.settled().await;
            } else {
                t_off.push(total);
                pre_off.push(outside);
            }
        }
    }
    println!();
    println!(
        "chat turns on {} ({} each, greedy, at most 64 tokens, two conversations each):",
        on.llm().model(),
        t_on.len()
    );
    println!(
        "  reply latency p50: memory on {:.1} ms, off {:.1} ms, ratio {:.3}",
        pct(&t_on, 50.0),
        pct(&t_off, 50.0),
        pct(&t_on, 50.0) / pct(&t_off, 50.0)
    );
    println!(
        "  work outside generation p50: memory on {:.2} ms (query embedding, recall, profile), off {:.2} ms",
        pct(&pre_on, 50.0),
        pct(&pre_off, 50.0)
    );
    println!(
        "  prompt tokens p50: memory on {:.0}, off {:.0}; reply tokens p50: on {:.0}, off {:.0}",
        pct(&tokens[0], 50.0),
        pct(&tokens[1], 50.0),
        pct(&replies[0], 50.0),
        pct(&replies[1], 50.0)
    );
    println!(
        "  engine time to first token p50: memory on {:.0} ms, off {:.0} ms",
        pct(&firsts[0], 50.0),
        pct(&firsts[1], 50.0)
    );
    let rounds = [
        "first conversation (facts recalled)",
        "same questions again (each recalls its earlier exchange)",
    ];
    for (round, what) in rounds.iter().enumerate() {
        let (a, b) = (
            pct(&before_first[0][round], 50.0),
            pct(&before_first[1][round], 50.0),
        );
        println!(
            "  request to first token p50, {what}: on {a:.0} ms, off {b:.0} ms; at equal reply length, memory on takes {:.3} of memory off's reply latency",
            1.0 + (a - b) / pct(&t_off, 50.0)
        );
    }
    if !after_move[0].is_empty() {
        println!(
            "  request to first token p50, the {} turns of each side after the history window first moved: on {:.0} ms, off {:.0} ms",
            after_move[0].len(),
            pct(&after_move[0], 50.0),
            pct(&after_move[1], 50.0)
        );
        println!(
            "  request to first token p50, the {} turns of each side at which the history window moved: on {:.0} ms, off {:.0} ms",
            at_move[0].len(),
            pct(&at_move[0], 50.0),
            pct(&at_move[1], 50.0)
        );
    }
    mind.after.settled().await;
    memory.settled().await;
    scratch.close().await;
    Ok(())
}
