use super::*;

/// Vocabulary-sized, uneven logits with repeated values (ties) and a
/// handful of NaN and infinite entries.
fn vocabulary(seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    let mut logits: Vec<f32> = (0..49_152)
        .map(|_| ((rng.next_unit() * 24.0 - 12.0) * 8.0).round() as f32 / 8.0)
        .collect();
    logits[17] = f32::NAN;
    logits[4_000] = f32::NEG_INFINITY;
    logits[4_001] = f32::NAN;
    logits
}

fn params(temperature: f32, top_p: f32, seed: Option<u32>) -> SamplingParams {
    SamplingParams {
        temperature,
        top_p,
        max_tokens: 1,
        stop: Vec::new(),
        seed,
    }
}

/// The reference: every finite candidate sorted, largest first, lower
/// token first on a tie.
fn sorted(logits: &[f32]) -> Vec<(f32, u32)> {
    let mut all: Vec<(f32, u32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .map(|(i, &x)| (x, i as u32))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all
}

fn exact_logprob(logits: &[f32], token: usize) -> f64 {
    let finite = logits.iter().copied().filter(|x| !x.is_nan());
    let max = finite.clone().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = finite.map(|l| f64::from(l - max).exp()).sum();
    f64::from(logits[token] - max) - sum.ln()
}

#[test]
fn greedy_takes_the_first_largest_logit_with_its_log_probability() {
    let mut logits = vocabulary(1);
    logits[30_000] = 40.0;
    logits[40_000] = 40.0;
    let mut sampler = Sampler::new(&params(0.0, 1.0, None));
    let choice = sampler.choose(&logits);
    assert_eq!(choice.token, 30_000, "the first of two equal maxima");
    let want = exact_logprob(&logits, 30_000);
    assert!((choice.logprob - want).abs() < 1e-4, "{choice:?} vs {want}");
    // A NaN is never the largest.
    logits[5] = f32::NAN;
    assert_eq!(sampler.choose(&logits).token, 30_000);
}

#[test]
fn top_k_keeps_exactly_the_largest_candidates_in_order() {
    let mut best = Vec::new();
    for seed in 0..20 {
        let logits = vocabulary(seed);
        top_k(&logits, TOP_K, &mut best);
        assert_eq!(best, sorted(&logits)[..TOP_K], "seed {seed}");
    }
    // Fewer finite candidates than k: all of them.
    let few = [f32::NAN, 1.0, f32::NEG_INFINITY, 3.0, 2.0];
    top_k(&few, TOP_K, &mut best);
    assert_eq!(best, vec![(3.0, 3), (2.0, 4), (1.0, 1)]);
    top_k(&[f32::NAN; 4], TOP_K, &mut best);
    assert!(best.is_empty());
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    // Probabilities at temperature 1: ln 4, ln 2, 0, 0 -> 4/8, 2/8, 1/8, 1/8.
    let c = [(4f32.ln(), 0), (2f32.ln(), 1), (0.0, 2), (0.0, 3)];
    assert_eq!(nucleus(&c, 0.01), 1, "at least one");
    assert_eq!(nucleus(&c, 0.5), 1);
    assert_eq!(nucleus(&c, 0.6), 2);
    assert_eq!(nucleus(&c, 0.74), 2);
    assert_eq!(nucleus(&c, 0.8), 3);
    assert_eq!(nucleus(&c, 1.0), 4);
}

#[test]
fn draws_follow_the_softmax_at_the_temperature() {
    // Logits 0, -ln 2, -ln 4 at temperature 0.5: weights 1, 1/4, 1/16.
    let kept = [(0.0f32, 7), (-(2f32.ln()), 8), (-(4f32.ln()), 9)];
    let total = 1.0 + 0.25 + 0.0625;
    let want = [1.0 / total, 0.25 / total, 0.0625 / total];
    let mut rng = SplitMix64(42);
    let mut counts = [0u32; 3];
    let n = 200_000;
    for _ in 0..n {
        counts[draw(&kept, 0.5, rng.next_unit())] += 1;
    }
    for i in 0..3 {
        let got = f64::from(counts[i]) / f64::from(n);
        // Four standard deviations of a binomial proportion.
        let sd = (want[i] * (1.0 - want[i]) / f64::from(n)).sqrt();
        assert!(
            (got - want[i]).abs() < 4.0 * sd,
            "{i}: {got} vs {}",
            want[i]
        );
    }
    assert_eq!(draw(&kept, 0.5, 0.0), 0);
    assert_eq!(draw(&kept, 0.5, 0.999_999_999), 2);
}

#[test]
fn random_sampling_stays_within_top_k_and_top_p() {
    let logits = vocabulary(3);
    let reference = sorted(&logits);
    let mut sampler = Sampler::new(&params(1.5, 0.3, Some(9)));
    let allowed = nucleus(&reference[..TOP_K], 0.3);
    let allowed: Vec<u32> = reference[..allowed].iter().map(|c| c.1).collect();
    for _ in 0..2_000 {
        let choice = sampler.choose(&logits);
        assert!(allowed.contains(&choice.token), "{choice:?}");
        let want = exact_logprob(&logits, choice.token as usize);
        assert!((choice.logprob - want).abs() < 1e-4);
    }
}

#[test]
fn a_seed_repeats_its_draws_and_no_seed_differs_between_replies() {
    let logits = vocabulary(4);
    let run = |p: &SamplingParams| {
        let mut s = Sampler::new(p);
        (0..64).map(|_| s.choose(&logits).token).collect::<Vec<_>>()
    };
    let seeded = params(1.0, 1.0, Some(1234));
    assert_eq!(run(&seeded), run(&seeded));
    assert_ne!(run(&seeded), run(&params(1.0, 1.0, Some(1235))));
    let unseeded = params(1.0, 1.0, None);
    assert_ne!(run(&unseeded), run(&unseeded));
}

#[test]
fn odd_settings_fall_back_safely() {
    let logits = vocabulary(5);
    let greedy = Sampler::new(&params(0.0, 1.0, None)).choose(&logits).token;
    // A negative or non-finite temperature is greedy; a NaN top-p keeps all.
    for t in [-1.0, f32::NAN, f32::INFINITY] {
        assert_eq!(
            Sampler::new(&params(t, 1.0, None)).choose(&logits).token,
            greedy
        );
    }
    let mut s = Sampler::new(&params(1.0, f32::NAN, Some(1)));
    let _ = s.choose(&logits);
    // Nothing finite to choose from: token 0, impossible.
    let none = [f32::NAN; 8];
    for t in [0.0, 1.0] {
        let c = Sampler::new(&params(t, 1.0, None)).choose(&none);
        assert_eq!((c.token, c.logprob), (0, f64::NEG_INFINITY));
    }
}
