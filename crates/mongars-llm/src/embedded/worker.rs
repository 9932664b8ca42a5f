//! The engine thread: one llama.cpp context whose unified KV cache holds
//! `parallel` sequences, and a loop that decodes every active reply in one
//! batch per step. New requests join between steps, finished ones leave,
//! and a long prompt is read in chunks so that the replies already running
//! keep getting a token each step. With one context there is one set of
//! compute threads, however many replies run. A prompt's beginning that
//! another sequence already holds (an operator's system prompt, say) is
//! shared, not read again, and a conversation whose history window moved
//! has its kept turns moved down its cache (`reuse`).

use super::prefill;
use super::reuse::{self, Plan};
use super::slot::{Slot, Step};
use super::{Job, Shared};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaLoraAdapter;
use mongars_core::domain::FinishReason;
use mongars_core::ports::LlmError;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, mpsc};

/// Most tokens in one decode call.
const BATCH: usize = 512;
/// Most prompt tokens read in a step while other replies are generating:
/// small enough that their next token is not held up for long.
const SHARED_PREFILL: usize = 128;

/// Creating contexts from one model concurrently is unsound in llama.cpp.
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

/// A context of the engine's model and threads whose unified KV cache holds
/// `sequences` sequences of the engine's context length each. The engine
/// and the benchmarks' raw loops make theirs here, one at a time.
pub(crate) fn new_context<'a>(
    backend: &'static LlamaBackend,
    shared: &'a Shared,
    sequences: usize,
) -> Result<LlamaContext<'a>, String> {
    let threads = i32::try_from(shared.threads).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((shared.n_ctx * sequences) as u32))
        .with_n_batch(BATCH as u32)
        .with_n_ubatch(BATCH as u32)
        .with_n_seq_max(sequences as u32)
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let _guard = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
    shared
        .model
        .new_context(backend, params)
        .map_err(|e| e.to_string())
}

/// The engine's loop, until its queue is closed and nothing runs. `lora`
/// is applied to the context (with its scale) before anything is decoded.
pub(crate) fn run_worker(
    backend: &'static LlamaBackend,
    shared: &Shared,
    lora: Option<(LlamaLoraAdapter, f32)>,
    queue: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Result<(), LlmError>>,
) {
    let made = new_context(backend, shared, shared.parallel).and_then(|mut ctx| {
        if let Some((mut adapter, scale)) = lora {
            ctx.lora_adapter_set(&mut adapter, scale)
                .map_err(|e| format!("adapter: {e}"))?;
        }
        Ok(ctx)
    });
    let mut ctx = match made {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(LlmError::Unavailable(format!(
                "llama.cpp context: {e}"
            ))));
            return;
        }
    };
    drop(ready);
    let mut slots: Vec<Slot> = (0..shared.parallel as i32).map(Slot::new).collect();
    let mut batch = LlamaBatch::new(BATCH, 1);
    loop {
        if !admit(&mut ctx, shared, &queue, &mut slots) {
            return; // the backend was dropped and nothing is running
        }
        if let Err(e) = step(&mut ctx, shared, &mut slots, &mut batch) {
            tracing::warn!(error = %e, "embedded generation failed");
            ctx.clear_kv_cache();
            for slot in &mut slots {
                slot.forget();
                if let Some(run) = slot.run.take() {
                    shared.load.active.fetch_sub(1, Ordering::SeqCst);
                    let _ = run.job.tx.blocking_send(Err(e.clone()));
                }
            }
        }
    }
}

/// Take waiting requests into free slots: block for one when nothing runs,
/// else only take what is already queued. Each goes to the free slot whose
/// cache serves its prompt best (a user's next turn lands where their
/// conversation already is), and that cache is made a beginning of its
/// prompt (`reuse`). False when the queue is closed and no reply is
/// running.
fn admit(
    ctx: &mut LlamaContext<'_>,
    shared: &Shared,
    queue: &mpsc::Receiver<Job>,
    slots: &mut [Slot],
) -> bool {
    let running = slots.iter().filter(|s| s.run.is_some()).count();
    let mut free = slots.len() - running;
    while free > 0 {
        let job = if running == 0 && free == slots.len() {
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return false,
            }
        } else {
            match queue.try_recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        shared.load.queued.fetch_sub(1, Ordering::SeqCst);
        if job.tx.is_closed() {
            continue; // the client left while the job waited
        }
        let (b, mut plan) = (0..slots.len())
            .filter(|&b| slots[b].run.is_none())
            .map(|b| (b, plan_for(slots, b, &job, shared)))
            .max_by_key(|(b, plan)| (slots[*b].fit(plan), std::cmp::Reverse(slots[*b].last_used)))
            .expect("a free slot");
        let best = &mut slots[b];
        best.last_used = shared.load.counters.steps.load(Ordering::Relaxed);
        if let Err(e) = reuse::carry_out(ctx, best.seq, &plan) {
            tracing::debug!(seq = best.seq, error = %e, "prompt cache dropped");
            let _ = ctx.clear_kv_cache_seq(Some(best.seq as u32), None, None);
            best.forget();
            plan = Plan::default();
        }
        best.start(job, &plan);
        let c = &shared.load.counters;
        c.prompt_reused
            .fetch_add(plan.held() as u64, Ordering::Relaxed);
        c.prompt_moved
            .fetch_add(plan.moved() as u64, Ordering::Relaxed);
        tracing::debug!(
            seq = best.seq,
            reused = plan.held(),
            moved = plan.moved(),
            "prompt cache"
        );
        shared.load.active.fetch_add(1, Ordering::SeqCst);
        free -= 1;
    }
    true
}

/// One decode of every running reply: the next token of each one that is
/// generating, and a chunk of prompt for those still reading theirs.
fn step(
    ctx: &mut LlamaContext<'_>,
    shared: &Shared,
    slots: &mut [Slot],
    batch: &mut LlamaBatch,
) -> Result<(), LlmError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| LlmError::Failed(format!("{what}: {e}"));
    // Replies whose client left stop here, before any work for them.
    for slot in slots.iter_mut() {
        if slot.run.as_ref().is_some_and(|r| r.job.tx.is_closed()) {
            finish(slot, shared, FinishReason::Cancelled);
        }
    }
    prefill::share(ctx, shared, slots);
    batch.clear();
    let mut generating = 0;
    for slot in slots.iter_mut() {
        let pos = slot.cached.len();
        if let Some(run) = slot.run.as_mut() {
            run.logits_at = None;
            if let Some(token) = run.next.take() {
                batch
                    .add(token, pos as i32, &[slot.seq], true)
                    .map_err(|e| fail("batch", &e))?;
                run.logits_at = Some(batch.n_tokens() - 1);
                slot.hold(&[token]);
                generating += 1;
            }
        }
    }
    let mut served = generating;
    let room = if generating > 0 {
        SHARED_PREFILL
    } else {
        BATCH
    };
    for (b, take) in prefill::plan(slots, room, batch.n_tokens() as usize) {
        let slot = &mut slots[b];
        let unread = slot.unread();
        shared
            .load
            .counters
            .prompt_read
            .fetch_add(take as u64, Ordering::Relaxed);
        let last = take == unread.len();
        let chunk = unread[..take].to_vec();
        let start = slot.cached.len();
        for (i, &token) in chunk.iter().enumerate() {
            let at_end = last && i + 1 == take;
            batch
                .add(token, (start + i) as i32, &[slot.seq], at_end)
                .map_err(|e| fail("batch", &e))?;
        }
        slot.hold(&chunk);
        if last && let Some(run) = slot.run.as_mut() {
            run.logits_at = Some(batch.n_tokens() - 1);
        }
        served += 1;
    }
    if batch.n_tokens() == 0 {
        return Ok(());
    }
    ctx.decode(batch).map_err(|e| fail("decode", &e))?;
    let c = &shared.load.counters;
    c.steps.fetch_add(1, Ordering::Relaxed);
    c.sequence_steps.fetch_add(served as u64, Ordering::Relaxed);
    c.widest.fetch_max(served, Ordering::Relaxed);
    for slot in slots.iter_mut() {
        let Some(at) = slot.run.as_ref().and_then(|r| r.logits_at) else {
            continue;
        };
        if let Step::Finished(reason) = slot.sample(ctx, shared, at) {
            finish(slot, shared, reason);
        }
    }
    Ok(())
}

/// What slot `b`'s cache would do for `job`: cells any other sequence
/// may share stay where they are.
fn plan_for(slots: &[Slot], b: usize, job: &super::Job, shared: &Shared) -> Plan {
    let others = (0..slots.len())
        .filter(|&a| a != b)
        .map(|a| slots[a].cached.as_slice());
    let pinned = reuse::pinned(&slots[b].cached, others);
    slots[b].plan(job, pinned, shared.move_kept_turns, shared.worth_moving)
}

/// The slot counts as free before its reply's end is sent, so that a
/// caller that has its whole reply sees the engine without it.
fn finish(slot: &mut Slot, shared: &Shared, reason: FinishReason) {
    shared.load.active.fetch_sub(1, Ordering::SeqCst);
    slot.finish(shared, reason);
}
