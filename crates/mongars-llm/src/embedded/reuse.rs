//! Reusing a sequence's cached turns that no longer begin its prompt.
//!
//! When a conversation outgrows its history window, its next prompt keeps
//! the system prompt and the newer turns but no longer holds the oldest
//! ones (nor the notes of the kept ones). The cache then shares only the
//! system prompt with it as a beginning, though the kept turns are still
//! cached further on. Instead of reading them again, the engine moves their
//! cells down: the cells of the text dropped before them leave the sequence
//! (`llama_memory_seq_rm`) and theirs take lower positions
//! (`llama_memory_seq_add`; llama.cpp rotates their keys to the new
//! positions before the next decode), as `llama-server --cache-reuse` does.
//!
//! A moved cell's keys and values were computed with the dropped text in
//! view, so the reply that follows may differ slightly from a fresh read.
//! That text was the same account's, and it stays with it:
//! - cells are moved only for a request of the account whose request left
//!   them (`GenerationRequest::account`);
//! - from its first moved cell on, a sequence's cells are its account's:
//!   no other sequence takes them as a shared beginning, and a request of
//!   another account keeps only the sequence's exact beginning
//!   (`Slot::exact`), the cells computed from nothing but the tokens before
//!   them.
//!
//! In the unified cache a cell another sequence shares (`prefill::share`)
//! has one position for both, so cells another sequence may hold are never
//! moved: only those past the longest beginning any other sequence has in
//! common with this one.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::{LlamaModel, RopeType};
use llama_cpp_2::token::LlamaToken;

/// Fewest tokens moved as one run: shorter matches (a chat template's
/// turn markers, a common word) are read again instead.
pub(crate) const MIN_RUN: usize = 16;

/// Cells moved down: `len` tokens from position `from` to position `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Move {
    pub from: usize,
    pub to: usize,
    pub len: usize,
}

/// How a sequence's cache begins a new prompt: its first `keep` tokens
/// stay where they are, then each move brings the next run of the prompt
/// down from further on in the cache. Everything else leaves the sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub keep: usize,
    pub moves: Vec<Move>,
}

impl Plan {
    /// Prompt tokens the sequence holds once the plan is carried out.
    pub fn held(&self) -> usize {
        self.moves.last().map_or(self.keep, |m| m.to + m.len)
    }

    /// How far into the cache the plan draws: to the end of its last run,
    /// else of the kept beginning. What lies before is the conversation
    /// itself, kept or dropped from its window; what lies after is evicted.
    pub fn reaches(&self) -> usize {
        self.moves.last().map_or(self.keep, |m| m.from + m.len)
    }

    /// Tokens the moves bring down.
    pub fn moved(&self) -> usize {
        self.moves.iter().map(|m| m.len).sum()
    }
}

/// Plan for `prompt` over `cached`: keep its first `keep` tokens, then,
/// when `movable_from` says from which cache position cells may move,
/// bring down each run of at least `MIN_RUN` tokens that continues the
/// prompt, in order, if they come to at least `worth` tokens in all. The
/// prompt's last token is always left to read (its logits start the
/// reply).
pub(crate) fn plan(
    cached: &[LlamaToken],
    prompt: &[LlamaToken],
    keep: usize,
    movable_from: Option<usize>,
    worth: usize,
) -> Plan {
    let mut plan = Plan {
        keep,
        moves: Vec::new(),
    };
    let Some(movable) = movable_from else {
        return plan;
    };
    let end = prompt.len().saturating_sub(1);
    let (mut c, mut p) = (movable.max(keep), keep);
    while c < cached.len() && p < end {
        let run = cached[c..]
            .iter()
            .zip(&prompt[p..end])
            .take_while(|(a, b)| a == b)
            .count();
        if run >= MIN_RUN {
            plan.moves.push(Move {
                from: c,
                to: p,
                len: run,
            });
            c += run;
            p += run;
        } else {
            c += 1;
        }
    }
    if plan.moved() < worth {
        plan.moves.clear();
    }
    plan
}

/// The fewest tokens worth moving in a context of `cells` cells. A shift
/// rotates the keys of every cell of the context, whatever moved, and its
/// cost grows with the cells; reading a token costs about two operations
/// per weight. On 2 cores with the default model (5,760 key values per
/// cell, 135 M weights) a shift of 8,192 cells cost about 50 ms and one of
/// 32,768 about 210 ms, while reading a token cost 1.9 ms: one token's
/// read for about 300 cells. `KEY_COST` is that calibration with a margin
/// of 1.5, so that a move saves clearly more than it costs; larger models
/// read each token at a higher price for each cell and move sooner.
pub(crate) fn worth_moving(model: &LlamaModel, cells: usize) -> usize {
    /// Weight operations of a read that take as long as rotating one key
    /// value, with the margin.
    const KEY_COST: f64 = 235.0;
    let head = f64::from(model.n_embd().max(1)) / f64::from(model.n_head().max(1));
    let keys = head * f64::from(model.n_head_kv().max(1)) * f64::from(model.n_layer().max(1));
    let cells_per_token = 2.0 * model.n_params() as f64 / (keys * KEY_COST);
    (cells as f64 / cells_per_token.max(1.0)).ceil() as usize
}

/// The longest beginning `cached` has in common with any of `others`: a
/// cell at a position below it may be shared, and must not move.
pub(crate) fn pinned<'a>(
    cached: &[LlamaToken],
    others: impl Iterator<Item = &'a [LlamaToken]>,
) -> usize {
    others
        .map(|o| o.iter().zip(cached).take_while(|(a, b)| a == b).count())
        .max()
        .unwrap_or(0)
}

/// Carry out `plan` on sequence `seq` of `ctx`: drop what lies between the
/// runs, move the runs down, drop what follows the last.
pub(crate) fn carry_out(ctx: &mut LlamaContext<'_>, seq: i32, plan: &Plan) -> Result<(), String> {
    let pos = |p: usize| u32::try_from(p).map_err(|e| e.to_string());
    for m in &plan.moves {
        if m.from == m.to {
            continue;
        }
        ctx.kv_cache_seq_rm(seq, Some(pos(m.to)?), Some(pos(m.from)?))
            .map_err(|e| e.to_string())?;
        let shift = i32::try_from(m.from - m.to).map_err(|e| e.to_string())?;
        ctx.kv_cache_seq_add(seq, Some(pos(m.from)?), Some(pos(m.from + m.len)?), -shift)
            .map_err(|e| e.to_string())?;
    }
    ctx.kv_cache_seq_rm(seq, Some(pos(plan.held())?), None)
        .map_err(|e| e.to_string())
}

/// Whether llama.cpp can move `model`'s cached cells: a transformer whose
/// keys carry one ordinary rotary position each, over a full (not sliding)
/// attention window. Anything else reads the kept turns again.
pub(crate) fn model_can_move(model: &LlamaModel) -> bool {
    if model.is_recurrent() || model.is_hybrid() {
        return false;
    }
    if !matches!(model.rope_type(), Some(RopeType::Norm | RopeType::NeoX)) {
        return false;
    }
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    // Step35's layers rotate different numbers of dimensions, which
    // llama.cpp's shift does not handle.
    if arch.is_empty() || arch == "step35" {
        return false;
    }
    model
        .meta_val_str(&format!("{arch}.attention.sliding_window"))
        .map_or(true, |w| w.trim() == "0")
}

#[cfg(test)]
mod tests;
