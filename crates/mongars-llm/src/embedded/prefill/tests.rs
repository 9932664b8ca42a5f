use super::*;
use crate::embedded::Job;
use llama_cpp_2::token::LlamaToken;
use mongars_core::domain::{GenerationRequest, SamplingParams};
use std::time::{Duration, Instant};

/// A slot whose reply arrived `arrived` ms after the first, holding the
/// first `have` tokens of `prompt`.
fn slot_reading(seq: i32, prompt: Vec<i32>, have: usize, arrived: u64) -> Slot {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let mut slot = Slot::new(seq);
    let held: Vec<LlamaToken> = prompt[..have].iter().map(|&t| LlamaToken(t)).collect();
    slot.hold(&held);
    let origin = Instant::now();
    let job = Job {
        prompt: prompt.into_iter().map(LlamaToken).collect(),
        request: GenerationRequest::classified(Vec::new(), SamplingParams::greedy(1)),
        received: origin + Duration::from_millis(arrived),
        tx,
    };
    let plan = slot.plan(&job, 0, false, 0);
    slot.start(job, &plan);
    slot
}

fn rules() -> Vec<i32> {
    (0..90).collect()
}

fn with_rules(tail: &[i32]) -> Vec<i32> {
    [rules().as_slice(), tail].concat()
}

#[test]
fn a_reply_waits_a_step_only_for_enough_shared_tokens() {
    let slots = vec![
        slot_reading(0, with_rules(&[1000, 1001]), 0, 0),
        slot_reading(1, with_rules(&[2000, 2001]), 0, 1),
        slot_reading(2, [&rules()[..3], &[3000; 40][..]].concat(), 0, 2),
        slot_reading(3, with_rules(&[4000]), 70, 3),
    ];
    // Slot 0, holding nothing yet, reads 92 tokens in this step: the rules.
    let reading = [(0, 92)];
    assert!(waits_for_another(&slots, &reading, 1), "90 shared tokens");
    assert!(!waits_for_another(&slots, &reading, 2), "3 shared tokens");
    assert!(!waits_for_another(&slots, &reading, 3), "20 more to gain");
    // A chunk that stops short of the shared part: wait for what it reads.
    assert!(waits_for_another(&slots, &[(0, 40)], 1));
    assert!(!waits_for_another(&slots, &[(0, 20)], 1), "20 to gain");
    assert!(!waits_for_another(&slots, &[], 1), "nobody reads");
}

#[test]
fn users_arriving_together_are_read_one_prompt_per_step_first_come_first() {
    let prompt = |first: i32| (first..first + 40).collect::<Vec<_>>();
    // Slot order is not arrival order.
    let slots = vec![
        slot_reading(0, prompt(3000), 0, 30),
        slot_reading(1, prompt(1000), 0, 10),
        slot_reading(2, prompt(2000), 0, 20),
    ];
    assert_eq!(plan(&slots, 512, 0), [(1, 40)], "the first to arrive alone");
    // The same beside a reply's decode token.
    assert_eq!(plan(&slots, 128, 1), [(1, 40)]);
    // A long prompt is read in chunks; the next starts only when it ends.
    let long = vec![
        slot_reading(0, (0..300).collect(), 0, 0),
        slot_reading(1, prompt(1000), 0, 1),
    ];
    assert_eq!(plan(&long, 128, 2), [(0, 128)]);
    assert_eq!(plan(&long, 512, 0), [(0, 300)]);
}

#[test]
fn short_prompts_fill_a_step_together() {
    let slots: Vec<Slot> = (0..4)
        .map(|i| slot_reading(i, vec![100 * i + 1; 12], 0, i as u64))
        .collect();
    // 12 + 12 + 12 reaches 32; the fourth waits for the next step.
    assert_eq!(plan(&slots, 512, 0), [(0, 12), (1, 12), (2, 12)]);
    assert_eq!(plan(&slots, 20, 0), [(0, 12), (1, 8)], "room runs out");
}

#[test]
fn new_users_under_one_system_prompt_let_the_first_read_it() {
    let slots = vec![
        slot_reading(0, with_rules(&[1000; 20]), 0, 0),
        slot_reading(1, with_rules(&[2000; 20]), 0, 1),
        slot_reading(2, (5000..5040).collect(), 0, 2),
    ];
    // Slot 1 waits for the rules; slot 2 shares nothing but the first has
    // ended, and the batch is full enough.
    assert_eq!(plan(&slots, 512, 0), [(0, 110)]);
    // At the next step slot 0 holds the rules, which slot 1 takes whole.
    let mut next = slots;
    let read = next[0].unread().to_vec();
    next[0].hold(&read);
    assert_eq!(donor(&next, 1), Some((90, 0)));
    assert_eq!(donor(&next, 2), None);
}

#[test]
fn cells_moved_for_one_account_are_not_shared() {
    let mut slots = vec![
        slot_reading(0, with_rules(&[1000; 20]), 0, 0),
        slot_reading(1, with_rules(&[2000; 20]), 0, 1),
    ];
    // Slot 0 holds the rules, but its cells from the 50th on were moved
    // there from further on (`reuse`): they carry text its own account
    // dropped, so slot 1 takes only the first 50 and does not wait for
    // what slot 0 reads.
    let read = slots[0].unread().to_vec();
    slots[0].hold(&read);
    slots[0].exact = 50;
    assert_eq!(donor(&slots, 1), Some((50, 0)));
    slots[0].cached.truncate(60);
    assert!(!waits_for_another(&slots, &[(0, 40)], 1));
    // Tokens read after moved cells are not exact either.
    slots[0].hold(&[LlamaToken(7)]);
    assert_eq!(slots[0].exact, 50);
    slots[0].forget();
    slots[0].hold(&[LlamaToken(7)]);
    assert_eq!(slots[0].exact, 1);
}
