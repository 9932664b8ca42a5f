//! One sequence of the engine's context: the tokens it holds (a user's
//! conversation so far, kept after a reply so that the next turn reads only
//! what is new) and the reply it is generating, if any.

use super::reuse::{Plan, plan};
use super::sampling::Sampler;
use super::{Job, Shared};
use crate::text::TextAssembler;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;
use mongars_core::domain::{FinishReason, GenerationEvent, GenerationUsage};
use std::time::{Duration, Instant};

pub(crate) struct Slot {
    /// llama.cpp's sequence id.
    pub seq: i32,
    /// Tokens whose keys and values are in the context for this sequence,
    /// at positions 0.. .
    pub cached: Vec<LlamaToken>,
    /// How many of the first `cached` tokens were computed from nothing but
    /// the tokens before them: all of them unless cells were moved
    /// (`reuse`). Only these may serve another account's prompt.
    pub exact: usize,
    /// The account of the last request served here.
    pub account: Option<i64>,
    pub run: Option<Running>,
    /// When it last took a reply (a step count), to evict the oldest first.
    pub last_used: u64,
}

/// A reply being generated.
pub(crate) struct Running {
    pub job: Job,
    queued: Duration,
    sampler: Sampler,
    text: TextAssembler,
    progress: Progress,
    /// The sampled token not yet fed back.
    pub next: Option<LlamaToken>,
    /// Where this sequence's logits are in the batch just decoded.
    pub logits_at: Option<i32>,
}

/// What a step did to a reply.
pub(crate) enum Step {
    Continue,
    Finished(FinishReason),
}

impl Slot {
    pub fn new(seq: i32) -> Self {
        Self {
            seq,
            cached: Vec::new(),
            exact: 0,
            account: None,
            run: None,
            last_used: 0,
        }
    }

    /// What of this slot's cache would serve `job`: the beginning it has in
    /// common with the prompt (only the exact part for another account),
    /// and for the same account, when `can_move`, the turns further on
    /// that continue it, moved down from past `pinned` when they come to
    /// at least `worth` tokens (`reuse`).
    pub fn plan(&self, job: &Job, pinned: usize, can_move: bool, worth: usize) -> Plan {
        let account = job.request.account;
        let same = account.is_some() && account == self.account;
        let common = reusable(&self.cached, &job.prompt);
        let keep = if same { common } else { common.min(self.exact) };
        plan(
            &self.cached,
            &job.prompt,
            keep,
            (same && can_move).then_some(pinned),
            worth,
        )
    }

    /// How well a prompt fits here, given the `plan` for it: tokens it
    /// would reuse less tokens of another conversation it would evict. A
    /// new user goes to an empty or stale slot rather than over someone's
    /// long conversation for the sake of a shared system prompt: that
    /// prompt is copied from whichever sequence holds it
    /// (`prefill::share`). The turns a moved window left behind are the
    /// conversation's own, not another's: they do not count as evicted.
    pub fn fit(&self, plan: &Plan) -> i64 {
        let evicted = self.cached.len().saturating_sub(plan.reaches());
        plan.held() as i64 - evicted as i64
    }

    /// Start `job` here once `plan` is carried out on the context: the
    /// slot then holds the plan's beginning of the prompt.
    pub fn start(&mut self, job: Job, plan: &Plan) {
        self.exact = self.exact.min(plan.keep);
        self.cached = job.prompt[..plan.held()].to_vec();
        self.account = job.request.account;
        let queued = Instant::now().duration_since(job.received);
        self.run = Some(Running {
            sampler: Sampler::new(&job.request.sampling),
            text: TextAssembler::new(&job.request.sampling.stop),
            progress: Progress::default(),
            queued,
            next: None,
            logits_at: None,
            job,
        });
    }

    /// `tokens` were put in the context after the cached ones.
    pub fn hold(&mut self, tokens: &[LlamaToken]) {
        if self.exact == self.cached.len() {
            self.exact += tokens.len();
        }
        self.cached.extend_from_slice(tokens);
    }

    /// The sequence was cleared from the context.
    pub fn forget(&mut self) {
        self.cached.clear();
        self.exact = 0;
    }

    /// The prompt of the reply running here, if any.
    pub fn prompt(&self) -> Option<&[LlamaToken]> {
        self.run.as_ref().map(|r| r.job.prompt.as_slice())
    }

    /// Prompt tokens still to read, when the reply is in its prefill.
    pub fn unread(&self) -> &[LlamaToken] {
        match &self.run {
            Some(r) if r.next.is_none() && r.progress.generated == 0 => {
                &r.job.prompt[self.cached.len().min(r.job.prompt.len())..]
            }
            _ => &[],
        }
    }

    /// Sample the next token from the logits at `at`, send what text it
    /// completes, and say whether the reply goes on.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, shared: &Shared, at: i32) -> Step {
        let position = self.cached.len();
        let Some(run) = self.run.as_mut() else {
            return Step::Finished(FinishReason::Cancelled);
        };
        let vocab = shared.model.vocab();
        let choice = run.sampler.choose(ctx.get_logits_ith(at));
        let token = LlamaToken(choice.token as i32);
        let p = &mut run.progress;
        p.logprob_sum += choice.logprob;
        p.generated += 1;
        p.first_token_at.get_or_insert_with(Instant::now);
        if vocab.is_eog(token) {
            return Step::Finished(FinishReason::Stop);
        }
        let delta = run.text.push(&vocab.token_to_piece(token, false, None));
        if !delta.is_empty()
            && run
                .job
                .tx
                .blocking_send(Ok(GenerationEvent::Delta(delta)))
                .is_err()
        {
            return Step::Finished(FinishReason::Cancelled);
        }
        if run.text.stopped() {
            return Step::Finished(FinishReason::Stop);
        }
        if run.job.tx.is_closed() {
            return Step::Finished(FinishReason::Cancelled);
        }
        if p.generated >= run.job.request.sampling.max_tokens || position + 1 >= shared.n_ctx {
            return Step::Finished(FinishReason::Length);
        }
        run.next = Some(token);
        Step::Continue
    }

    /// End the reply: flush held-back text, send the usage, free the slot.
    /// The cached tokens stay for the next prompt that shares them.
    pub fn finish(&mut self, shared: &Shared, reason: FinishReason) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        if reason != FinishReason::Cancelled {
            let rest = run.text.finish();
            if !rest.is_empty() {
                let _ = run.job.tx.blocking_send(Ok(GenerationEvent::Delta(rest)));
            }
        }
        let usage = run.progress.usage(shared, &run.job, run.queued, reason);
        if matches!(reason, FinishReason::Stop | FinishReason::Length) {
            // With replies waiting, the time since the last one ended says
            // how fast the engine frees a slot under this load.
            let saturated = shared.load.queued.load(std::sync::atomic::Ordering::SeqCst) > 0;
            shared.load.admission.record(
                usage.total.saturating_sub(usage.queued),
                saturated,
                Instant::now(),
            );
        }
        let _ = run.job.tx.blocking_send(Ok(GenerationEvent::Done(usage)));
    }
}

/// How much of `cached` can stay in the context for `prompt`: the common
/// prefix, leaving at least the last prompt token to read again (its logits
/// start the reply).
pub(crate) fn reusable(cached: &[LlamaToken], prompt: &[LlamaToken]) -> usize {
    let common = cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    common.min(prompt.len().saturating_sub(1))
}

/// Counters of one generation.
#[derive(Default)]
struct Progress {
    generated: u32,
    logprob_sum: f64,
    first_token_at: Option<Instant>,
}

impl Progress {
    fn usage(
        &self,
        shared: &Shared,
        job: &Job,
        queued: Duration,
        finish_reason: FinishReason,
    ) -> GenerationUsage {
        let first = self.first_token_at.unwrap_or_else(Instant::now);
        GenerationUsage {
            model: shared.model_name.clone(),
            prompt_tokens: job.prompt.len() as u32,
            completion_tokens: self.generated,
            finish_reason,
            mean_logprob: (self.generated > 0)
                .then(|| self.logprob_sum / f64::from(self.generated)),
            time_to_first_token: first.duration_since(job.received),
            queued,
            total: job.received.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongars_core::domain::SamplingParams;

    fn t(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&i| LlamaToken(i)).collect()
    }

    #[test]
    fn reuse_is_the_common_prefix_minus_the_last_prompt_token() {
        assert_eq!(reusable(&t(&[]), &t(&[1, 2, 3])), 0);
        assert_eq!(reusable(&t(&[1, 2, 9, 9]), &t(&[1, 2, 3, 4])), 2);
        assert_eq!(
            reusable(&t(&[1, 2, 3, 4, 5]), &t(&[1, 2, 3])),
            2,
            "same prompt: read the last again"
        );
        assert_eq!(reusable(&t(&[1, 2]), &t(&[1, 2, 3, 4])), 2);
        assert_eq!(reusable(&t(&[7]), &t(&[1])), 0);
    }

    fn job(prompt: Vec<LlamaToken>, account: Option<i64>) -> Job {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let mut request = mongars_core::domain::GenerationRequest::classified(
            Vec::new(),
            SamplingParams::greedy(1),
        );
        request.account = account;
        Job {
            prompt,
            request,
            received: Instant::now(),
            tx,
        }
    }

    #[test]
    fn moved_cells_serve_only_the_account_that_left_them() {
        // A conversation of account 1 whose window moved: the system
        // prompt (0..10) stayed, turns 300.. and 400.. came down from
        // further on.
        let system: Vec<i32> = (0..10).collect();
        let turns: Vec<i32> = (300..320).chain(400..420).collect();
        let first = t(&[system.clone(), (200..220).collect(), turns.clone()].concat());
        let mut slot = Slot::new(0);
        slot.hold(&first);
        slot.account = Some(1);
        let next = t(&[system.clone(), turns.clone(), vec![900, 901]].concat());
        let moving = job(next.clone(), Some(1));
        let plan = slot.plan(&moving, 0, true, 0);
        assert!(plan.keep == 10 && plan.moved() == 40, "{plan:?}");
        // Not its account, no account, or moving turned off: the beginning
        // only.
        for (account, can_move) in [(Some(2), true), (None, true), (Some(1), false)] {
            let plan = slot.plan(&job(next.clone(), account), 0, can_move, 0);
            assert_eq!((plan.held(), plan.moved()), (10, 0), "{account:?}");
        }
        slot.start(moving, &plan);
        assert_eq!((slot.cached.len(), slot.exact), (50, 10));
        // Later, the same tokens asked by another account: only the exact
        // beginning is kept, though all of it matches.
        slot.run = None;
        let plan = slot.plan(&job(next.clone(), Some(2)), 0, true, 0);
        assert_eq!(plan.held(), 10);
        let plan = slot.plan(&job(next, Some(1)), 0, true, 0);
        assert_eq!(plan.held(), 50, "its own account keeps it all");
    }

    #[test]
    fn a_conversation_whose_window_moved_goes_back_to_its_own_slot() {
        // Account 1's long conversation: a system prompt, twenty old turns
        // the window now drops, then five it keeps. Account 2's is short.
        let system: Vec<i32> = (0..10).collect();
        let old: Vec<i32> = (1000..1400).collect();
        let kept: Vec<i32> = (2000..2100).collect();
        let mut own = Slot::new(0);
        own.hold(&t(&[system.clone(), old, kept.clone()].concat()));
        own.account = Some(1);
        let mut other = Slot::new(1);
        other.hold(&t(&[system.clone(), (3000..3040).collect()].concat()));
        other.account = Some(2);
        let next = job(t(&[system, kept, vec![900, 901]].concat()), Some(1));
        let (a, b) = (own.plan(&next, 0, true, 0), other.plan(&next, 0, true, 0));
        assert_eq!((a.held(), a.reaches(), b.held()), (110, 510, 10));
        assert!(
            own.fit(&a) > other.fit(&b),
            "{} against {}",
            own.fit(&a),
            other.fit(&b)
        );
        // Without moving, the long conversation would rather be kept.
        let a = own.plan(&next, 0, false, 0);
        assert!(own.fit(&a) < other.fit(&b));
    }
}
