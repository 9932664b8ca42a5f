use super::*;

fn t(ids: impl IntoIterator<Item = i32>) -> Vec<LlamaToken> {
    ids.into_iter().map(LlamaToken).collect()
}

/// A system prompt of 10 tokens.
fn system() -> Vec<LlamaToken> {
    t(0..10)
}

/// Turn `k`: a question and its reply, 20 tokens.
fn turn(k: i32) -> Vec<LlamaToken> {
    t(100 * k..100 * k + 20)
}

/// The note turn `k` was asked with, 5 tokens.
fn note(k: i32) -> Vec<LlamaToken> {
    t(1000 * k..1000 * k + 5)
}

fn concat(parts: &[Vec<LlamaToken>]) -> Vec<LlamaToken> {
    parts.concat()
}

/// What the sequence holds once `plan` is carried out on `cached`.
fn after(cached: &[LlamaToken], plan: &Plan) -> Vec<LlamaToken> {
    let mut held = cached[..plan.keep].to_vec();
    let mut below = plan.keep;
    for m in &plan.moves {
        assert_eq!(m.to, held.len(), "runs land one after another: {plan:?}");
        assert!(m.from >= below, "runs move in order: {plan:?}");
        assert!(m.from > m.to, "runs only move down: {plan:?}");
        held.extend_from_slice(&cached[m.from..m.from + m.len]);
        below = m.from + m.len;
    }
    held
}

#[test]
fn the_kept_turns_move_down_when_the_window_moves() {
    // Six turns and the reply to the sixth are cached; the window keeps
    // turns 4 to 6 and a new question follows.
    let cached = concat(&[
        system(),
        turn(1),
        turn(2),
        turn(3),
        turn(4),
        turn(5),
        turn(6),
    ]);
    let question = t(900..908);
    let prompt = concat(&[system(), turn(4), turn(5), turn(6), question]);
    let keep = crate::embedded::slot::reusable(&cached, &prompt);
    assert_eq!(keep, 10, "only the system prompt begins both");
    let p = plan(&cached, &prompt, keep, Some(keep), 0);
    assert_eq!(
        p.moves,
        [Move {
            from: 70,
            to: 10,
            len: 60
        }]
    );
    assert_eq!((p.held(), p.moved()), (70, 60));
    assert_eq!(after(&cached, &p), prompt[..70]);
    // Without moving, all three turns are read again.
    let p = plan(&cached, &prompt, keep, None, 0);
    assert_eq!((p.held(), p.moved()), (10, 0));
}

#[test]
fn notes_dropped_between_kept_turns_leave_gaps_that_close() {
    let cached = concat(&[
        system(),
        note(1),
        turn(1),
        note(2),
        turn(2),
        note(3),
        turn(3),
        note(4),
        turn(4),
    ]);
    let prompt = concat(&[system(), turn(2), turn(3), turn(4), note(5), t(500..510)]);
    let p = plan(&cached, &prompt, 10, Some(10), 0);
    assert_eq!(
        p.moves,
        [
            Move {
                from: 40,
                to: 10,
                len: 20
            },
            Move {
                from: 65,
                to: 30,
                len: 20
            },
            Move {
                from: 90,
                to: 50,
                len: 20
            },
        ]
    );
    assert_eq!(after(&cached, &p), prompt[..p.held()]);
    assert_eq!(p.held(), 70, "the new note and question are read");
}

#[test]
fn cells_another_sequence_may_share_stay_where_they_are() {
    let cached = concat(&[system(), turn(1), turn(2), turn(3)]);
    let prompt = concat(&[system(), turn(2), turn(3), t(900..904)]);
    // Another sequence holds the system prompt and turn 1 and 2: turn 2's
    // cells may be its too, so it is read again, and so is all after it.
    let other = concat(&[system(), turn(1), turn(2), t(700..720)]);
    let from = pinned(&cached, [other.as_slice()].into_iter());
    assert_eq!(from, 50);
    let p = plan(&cached, &prompt, 10, Some(from), 0);
    assert_eq!((p.held(), p.moves.len()), (10, 0));
    // A sequence sharing only the system prompt pins nothing past it.
    let other = concat(&[system(), t(700..720)]);
    let from = pinned(&cached, [other.as_slice(), &[][..]].into_iter());
    assert_eq!(from, 10);
    assert_eq!(plan(&cached, &prompt, 10, Some(from), 0).held(), 50);
    assert_eq!(pinned(&cached, std::iter::empty()), 0);
}

#[test]
fn short_matches_are_read_again() {
    let cached = concat(&[system(), turn(1), t(200..200 + MIN_RUN as i32 - 1)]);
    let prompt = concat(&[system(), t(200..200 + MIN_RUN as i32 - 1), t(900..904)]);
    let p = plan(&cached, &prompt, 10, Some(10), 0);
    assert!(p.moves.is_empty(), "{p:?}");
    let cached = concat(&[system(), turn(1), t(200..200 + MIN_RUN as i32)]);
    let prompt = concat(&[system(), t(200..200 + MIN_RUN as i32), t(900..904)]);
    assert_eq!(plan(&cached, &prompt, 10, Some(10), 0).moved(), MIN_RUN);
}

#[test]
fn moves_too_small_for_their_shift_are_read_instead() {
    let cached = concat(&[system(), turn(1), turn(2), turn(3)]);
    let prompt = concat(&[system(), turn(2), turn(3), t(900..904)]);
    assert_eq!(plan(&cached, &prompt, 10, Some(10), 40).moved(), 40);
    let p = plan(&cached, &prompt, 10, Some(10), 41);
    assert_eq!((p.held(), p.moved()), (10, 0));
}

#[test]
fn the_last_prompt_token_is_always_read() {
    // The prompt is exactly the kept turns: its last token is read again
    // for the logits that start the reply.
    let cached = concat(&[system(), turn(1), turn(2), turn(3)]);
    let prompt = concat(&[system(), turn(2), turn(3)]);
    let p = plan(&cached, &prompt, 10, Some(10), 0);
    assert_eq!(p.held(), prompt.len() - 1);
    assert_eq!(after(&cached, &p), prompt[..prompt.len() - 1]);
    assert_eq!(plan(&[], &t([1]), 0, Some(0), 0).held(), 0);
    assert_eq!(plan(&cached, &[], 0, Some(0), 0).held(), 0);
}

#[test]
fn every_plan_rebuilds_the_beginning_of_its_prompt() {
    // Conversations cut and spliced at random: whatever the plan, the
    // sequence ends up holding exactly a beginning of the prompt.
    let mut seed = 0x2545_f491_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..500 {
        let turns: Vec<Vec<LlamaToken>> = (0..next(8) + 1)
            .map(|k| t((0..next(40) as i32 + 1).map(|i| (k as i32 * 64 + i) % 90)))
            .collect();
        let mut cached = system();
        for tk in &turns {
            cached.extend_from_slice(tk);
        }
        let mut prompt = system();
        for tk in turns.iter().skip(next(turns.len() as u64) as usize) {
            if next(4) > 0 {
                prompt.extend_from_slice(tk);
            }
        }
        prompt.extend(t((0..next(6) as i32).map(|i| 95 + i)));
        let keep = crate::embedded::slot::reusable(&cached, &prompt);
        let movable = next(cached.len() as u64 + 1) as usize;
        let p = plan(&cached, &prompt, keep, Some(movable), 0);
        assert_eq!(after(&cached, &p), prompt[..p.held()], "{p:?}");
        assert!(p.held() < prompt.len().max(1));
        assert!(
            p.moves
                .iter()
                .all(|m| m.from >= movable && m.len >= MIN_RUN)
        );
    }
}
