//! Which prompt tokens a step reads, and which a sequence takes from
//! another instead of reading them.
//!
//! - Sharing: before each step, a reply still reading its prompt takes the
//!   longest beginning of it that any other sequence holds (an operator's
//!   system prompt, say). In the unified KV cache the copy only adds the
//!   sequence to those cells: nothing is computed and no room is used.
//! - Waiting: a reply whose next tokens another reply is reading in this
//!   very step skips the step and takes them at the next.
//! - Order: prompts are read in the order their requests arrived, and once
//!   one is read to its end in a step, no other starts in it unless the
//!   batch is still small. The first of several users who arrive together
//!   gets their first token after their own prompt, not after everyone's.

use super::Shared;
use super::slot::{Slot, reusable};
use llama_cpp_2::context::LlamaContext;
use std::sync::atomic::Ordering;

/// A reply waits a step for tokens another is reading only when it gains
/// this many: fewer (the chat template's opening, say) cost less to read
/// again than the step it would wait.
const WAIT_FOR_SHARED: usize = 32;

/// Once a prompt is read to its end in a step, another starts in it only
/// while the batch holds fewer tokens than this (tiny steps cost their
/// fixed overhead for little work).
const FULL_STEP: usize = 32;

/// Give every reply still reading its prompt what another sequence already
/// holds of it, copied into its own sequence.
pub(crate) fn share(ctx: &mut LlamaContext<'_>, shared: &Shared, slots: &mut [Slot]) {
    for b in 0..slots.len() {
        if slots[b].unread().is_empty() {
            continue;
        }
        let Some((upto, a)) = donor(slots, b) else {
            continue;
        };
        let have = slots[b].cached.len();
        let (src, dst) = (slots[a].seq, slots[b].seq);
        // Positions fit in u32: a sequence never exceeds the context.
        let copied = ctx
            .kv_cache_seq_cp(src, dst, Some(have as u32), Some(upto as u32))
            .is_ok()
            && ctx.kv_cache_seq_pos_max(dst) == upto as i32 - 1;
        if !copied {
            // A memory that cannot share part of a sequence (a recurrent
            // model's state): take back whatever came and read instead.
            if ctx.kv_cache_seq_rm(dst, Some(have as u32), None).is_err() {
                let _ = ctx.clear_kv_cache_seq(Some(dst as u32), None, None);
                slots[b].forget();
            }
            continue;
        }
        let copied = slots[b]
            .prompt()
            .map_or(Vec::new(), |p| p[have..upto].to_vec());
        slots[b].hold(&copied);
        shared
            .load
            .counters
            .prompt_reused
            .fetch_add(copied.len() as u64, Ordering::Relaxed);
        tracing::debug!(
            seq = dst,
            from = src,
            shared = copied.len(),
            "prompt shared"
        );
    }
}

/// The slot holding the longest beginning of `b`'s prompt, when it is
/// longer than what `b` holds: (tokens, slot). Only cells computed from
/// their own beginning are shared (`Slot::exact`).
fn donor(slots: &[Slot], b: usize) -> Option<(usize, usize)> {
    let prompt = slots[b].prompt()?;
    (0..slots.len())
        .filter(|&a| a != b)
        .map(|a| (reusable(&slots[a].cached, prompt).min(slots[a].exact), a))
        .max()
        .filter(|&(upto, _)| upto > slots[b].cached.len())
}

/// The prompt chunks of this step, as (slot, tokens to read), given `room`
/// prompt tokens and the `in_batch` tokens already in the batch.
pub(crate) fn plan(slots: &[Slot], mut room: usize, mut in_batch: usize) -> Vec<(usize, usize)> {
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    let mut ended = false;
    for b in arrival_order(slots) {
        if room == 0 || (ended && in_batch >= FULL_STEP) {
            break;
        }
        if waits_for_another(slots, &chunks, b) {
            continue;
        }
        let unread = slots[b].unread().len();
        let take = unread.min(room);
        chunks.push((b, take));
        ended |= take == unread;
        room -= take;
        in_batch += take;
    }
    chunks
}

/// Slots with prompt still to read, in the order their requests arrived.
fn arrival_order(slots: &[Slot]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..slots.len())
        .filter(|&b| !slots[b].unread().is_empty())
        .collect();
    order.sort_by_key(|&b| slots[b].run.as_ref().map(|r| r.job.received));
    order
}

/// Whether slot `b` should skip reading this step because a slot already
/// reading (`chunks`: slot and tokens it reads) is reading at least
/// `WAIT_FOR_SHARED` of the next tokens `b` needs.
fn waits_for_another(slots: &[Slot], chunks: &[(usize, usize)], b: usize) -> bool {
    let Some(prompt) = slots[b].prompt() else {
        return false;
    };
    let have = slots[b].cached.len();
    chunks.iter().any(|&(a, take)| {
        if slots[a].exact < slots[a].cached.len() {
            return false; // what it reads will not be shared
        }
        let end = slots[a].cached.len() + take;
        slots[a]
            .prompt()
            .is_some_and(|other| reusable(other, prompt).min(end) >= have + WAIT_FOR_SHARED)
    })
}

#[cfg(test)]
mod tests;
