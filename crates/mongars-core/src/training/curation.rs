//! Curation: what users agree to share becomes training samples, with
//! their personal data replaced; samples where some was found wait for an
//! operator; ready samples of consenting users become immutable dataset
//! versions, split into train and held-out by a seeded hash of their id.

use super::model::{Dataset, DatasetItem, Rating, Sample, SampleSource, SampleStatus, Split};
use super::pii::redact;
use crate::error::CoreError;
use crate::ports::{
    Clock, CurationRepository, Feedback, MemoryRepository, NewDataset, SampleCounts,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Longest prompt, response or correction of a sample, in characters.
pub const SAMPLE_MAX_CHARS: usize = 8000;
/// Fewest samples a dataset is built from.
pub const DATASET_MIN_SAMPLES: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct CurationOptions {
    /// Seed of the train / held-out split.
    pub seed: u64,
    /// Share of samples held out (0..1).
    pub held_out_share: f64,
}

/// What became of a rating.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackOutcome {
    /// The sample made from it, if any (none without consent, for a
    /// thumbs-down without correction, or for a turn without a reply).
    pub sample: Option<Sample>,
}

pub struct CurationService {
    repo: Arc<dyn CurationRepository>,
    /// For the names users told the memory (replaced like other data).
    memories: Option<Arc<dyn MemoryRepository>>,
    clock: Arc<dyn Clock>,
    options: CurationOptions,
}

/// A text of a sample: control characters out, trimmed, 1 to
/// [`SAMPLE_MAX_CHARS`] characters. Line breaks are kept.
pub fn parse_sample_text(field: &'static str, raw: &str) -> Result<String, CoreError> {
    let clean: String = raw
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect();
    let text = clean.trim();
    if text.is_empty() {
        return Err(CoreError::validation(field, format!("{field} is empty")));
    }
    let n = text.chars().count();
    if n > SAMPLE_MAX_CHARS {
        return Err(CoreError::validation(
            field,
            format!("{field} is {n} characters; at most {SAMPLE_MAX_CHARS} are allowed"),
        ));
    }
    Ok(text.to_string())
}

/// Whether a sample id falls in the held-out share under `seed`.
pub fn held_out_fraction(seed: u64, id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(id.as_bytes());
    let d = h.finalize();
    let v = u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]));
    v as f64 / u64::MAX as f64
}

/// The SHA-256 of a dataset's items, in their order.
pub fn content_hash(items: &[DatasetItem]) -> String {
    let mut h = Sha256::new();
    for it in items {
        for part in [it.split.as_str(), &it.prompt, &it.response] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    format!("{:x}", h.finalize())
}

/// The name in a remembered "The user's name is X." fact.
fn told_name(fact: &str) -> Option<String> {
    let (_, rest) = fact.split_once(" name is ")?;
    let name = rest.trim().trim_end_matches('.').trim();
    (!name.is_empty()).then(|| name.to_string())
}

impl CurationService {
    pub fn new(
        repo: Arc<dyn CurationRepository>,
        memories: Option<Arc<dyn MemoryRepository>>,
        clock: Arc<dyn Clock>,
        options: CurationOptions,
    ) -> Self {
        Self {
            repo,
            memories,
            clock,
            options,
        }
    }

    pub async fn consent(&self, user_id: i64) -> Result<bool, CoreError> {
        Ok(self.repo.consent(user_id).await?)
    }

    /// Record the user's choice; withdrawing deletes their samples (how
    /// many is returned).
    pub async fn set_consent(&self, user_id: i64, consent: bool) -> Result<u64, CoreError> {
        Ok(self.repo.set_consent(user_id, consent).await?)
    }

    /// Names to replace in the user's samples: their account name and the
    /// names they told the memory.
    async fn names(&self, user_id: i64, username: &str) -> Result<Vec<String>, CoreError> {
        let mut names = vec![username.to_string()];
        if let Some(m) = &self.memories {
            for fact in m.with_slot(user_id, "name", self.clock.now()).await? {
                names.extend(told_name(&fact.text));
            }
        }
        Ok(names)
    }

    /// A sample of the user, personal data replaced; held when any was found.
    async fn sample(
        &self,
        user_id: i64,
        username: &str,
        source: SampleSource,
        turn_id: Option<&str>,
        prompt: &str,
        response: &str,
    ) -> Result<Sample, CoreError> {
        let names = self.names(user_id, username).await?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (p, r) = (redact(prompt, &names), redact(response, &names));
        let mut pii: Vec<String> = p
            .found
            .iter()
            .chain(&r.found)
            .map(|k| {
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        pii.sort();
        pii.dedup();
        Ok(Sample {
            id: uuid::Uuid::new_v4().to_string(),
            user_id,
            source,
            turn_id: turn_id.map(str::to_string),
            prompt: p.text,
            response: r.text,
            status: if pii.is_empty() {
                SampleStatus::Ready
            } else {
                SampleStatus::Held
            },
            pii,
            created_at: self.clock.now(),
            reviewed_at: None,
        })
    }

    /// Rate a turn of the user. With consent, a correction (or the reply of
    /// a thumbs-up) becomes a sample in place of any earlier one of the turn.
    pub async fn feedback(
        &self,
        user_id: i64,
        username: &str,
        turn_id: &str,
        rating: Rating,
        correction: Option<&str>,
    ) -> Result<FeedbackOutcome, CoreError> {
        let correction = correction
            .map(|c| parse_sample_text("correction", c))
            .transpose()?;
        let (query, reply) = self
            .repo
            .turn(user_id, turn_id)
            .await?
            .ok_or(CoreError::NotFound("Turn"))?;
        self.repo
            .save_feedback(&Feedback {
                turn_id: turn_id.to_string(),
                user_id,
                rating,
                correction: correction.clone(),
                at: self.clock.now(),
            })
            .await?;
        let answer = match (&correction, rating, reply) {
            (Some(c), _, _) => Some(c.clone()),
            (None, Rating::Up, Some(r)) if !r.trim().is_empty() => Some(r),
            _ => None,
        };
        let Some(answer) = answer else {
            self.repo.remove_turn_sample(user_id, turn_id).await?;
            return Ok(FeedbackOutcome { sample: None });
        };
        if !self.repo.consent(user_id).await? {
            return Ok(FeedbackOutcome { sample: None });
        }
        let prompt = parse_sample_text("prompt", &query)?;
        let answer = parse_sample_text("correction", &answer)?;
        let sample = self
            .sample(
                user_id,
                username,
                SampleSource::Feedback,
                Some(turn_id),
                &prompt,
                &answer,
            )
            .await?;
        self.repo.save_sample(&sample).await?;
        Ok(FeedbackOutcome {
            sample: Some(sample),
        })
    }

    /// An exchange the user wrote as an example. Refused without consent.
    pub async fn example(
        &self,
        user_id: i64,
        username: &str,
        prompt: &str,
        response: &str,
    ) -> Result<Sample, CoreError> {
        let prompt = parse_sample_text("prompt", prompt)?;
        let response = parse_sample_text("response", response)?;
        if !self.repo.consent(user_id).await? {
            return Err(CoreError::Conflict {
                code: "training.consent_required",
                message: "Training consent is off: turn it on in your profile first".into(),
            });
        }
        let sample = self
            .sample(
                user_id,
                username,
                SampleSource::Example,
                None,
                &prompt,
                &response,
            )
            .await?;
        self.repo.save_sample(&sample).await?;
        Ok(sample)
    }

    /// Samples waiting for an operator, oldest first.
    pub async fn review_queue(&self, limit: u32) -> Result<Vec<Sample>, CoreError> {
        Ok(self.repo.samples(SampleStatus::Held, limit).await?)
    }

    pub async fn counts(&self) -> Result<SampleCounts, CoreError> {
        Ok(self.repo.sample_counts().await?)
    }

    /// Approve (the sample may enter datasets, placeholders and all) or
    /// drop a held sample.
    pub async fn review(&self, id: &str, approve: bool, by: i64) -> Result<Sample, CoreError> {
        let to = if approve {
            SampleStatus::Ready
        } else {
            SampleStatus::Dropped
        };
        self.repo
            .review(id, to, by, self.clock.now())
            .await?
            .ok_or(CoreError::NotFound("Held sample"))
    }

    /// A new dataset version from every ready sample of consenting users.
    pub async fn build_dataset(&self, by: Option<i64>) -> Result<Dataset, CoreError> {
        let samples = self.repo.dataset_candidates().await?;
        if samples.len() < DATASET_MIN_SAMPLES {
            return Err(CoreError::Conflict {
                code: "training.not_enough_samples",
                message: format!(
                    "{} ready samples from consenting users; a dataset needs at least \
                     {DATASET_MIN_SAMPLES}",
                    samples.len()
                ),
            });
        }
        let o = self.options;
        let mut items: Vec<(f64, DatasetItem)> = samples
            .into_iter()
            .map(|s| {
                let f = held_out_fraction(o.seed, &s.id);
                let split = if f < o.held_out_share {
                    Split::HeldOut
                } else {
                    Split::Train
                };
                let item = DatasetItem {
                    sample_id: s.id,
                    user_id: s.user_id,
                    split,
                    prompt: s.prompt,
                    response: s.response,
                };
                (f, item)
            })
            .collect();
        // Both parts need a sample: the one nearest the boundary moves.
        for want in [Split::HeldOut, Split::Train] {
            if !items.iter().any(|(_, i)| i.split == want) {
                let pick = items.iter_mut().min_by(|a, b| {
                    let key = |x: &(f64, DatasetItem)| match want {
                        Split::HeldOut => x.0,
                        Split::Train => 1.0 - x.0,
                    };
                    key(a).total_cmp(&key(b))
                });
                if let Some((_, item)) = pick {
                    item.split = want;
                }
            }
        }
        let mut items: Vec<DatasetItem> = items.into_iter().map(|(_, i)| i).collect();
        items.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
        let new = NewDataset {
            id: uuid::Uuid::new_v4().to_string(),
            content_hash: content_hash(&items),
            seed: o.seed as i64,
            held_out_share: o.held_out_share,
            items,
            created_at: self.clock.now(),
            created_by: by,
        };
        Ok(self.repo.insert_dataset(&new).await?)
    }

    pub async fn datasets(&self) -> Result<Vec<Dataset>, CoreError> {
        Ok(self.repo.datasets().await?)
    }

    pub async fn dataset(&self, id: &str) -> Result<(Dataset, Vec<DatasetItem>), CoreError> {
        let d = self
            .repo
            .dataset(id)
            .await?
            .ok_or(CoreError::NotFound("Dataset"))?;
        let items = self.repo.dataset_items(id).await?;
        Ok((d, items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_texts_are_cleaned_and_bounded() {
        assert_eq!(
            parse_sample_text("prompt", "  two\nlines\u{7}  ").unwrap(),
            "two\nlines"
        );
        assert!(parse_sample_text("prompt", " \u{0} ").is_err());
        let long = "a".repeat(SAMPLE_MAX_CHARS + 1);
        let e = parse_sample_text("response", &long).unwrap_err();
        assert_eq!(e.code(), "request.validation");
    }

    #[test]
    fn the_split_depends_on_the_seed_and_the_id_only() {
        let a = held_out_fraction(7, "sample-1");
        assert_eq!(a, held_out_fraction(7, "sample-1"));
        assert_ne!(a, held_out_fraction(8, "sample-1"));
        let held = (0..1000)
            .filter(|i| held_out_fraction(7, &format!("s{i}")) < 0.2)
            .count();
        assert!((150..250).contains(&held), "{held} of 1000 held out at 20%");
    }

    #[test]
    fn names_are_read_from_remembered_facts() {
        assert_eq!(
            told_name("The user's name is Ana Lopes."),
            Some("Ana Lopes".into())
        );
        assert_eq!(told_name("The user works on Orion."), None);
    }

    #[test]
    fn the_content_hash_covers_split_and_text() {
        let item = |split, text: &str| DatasetItem {
            sample_id: "a".into(),
            user_id: 1,
            split,
            prompt: text.into(),
            response: "r".into(),
        };
        let h = content_hash(&[item(Split::Train, "p")]);
        assert_ne!(h, content_hash(&[item(Split::HeldOut, "p")]));
        assert_ne!(h, content_hash(&[item(Split::Train, "q")]));
        assert_eq!(h, content_hash(&[item(Split::Train, "p")]));
    }
}
