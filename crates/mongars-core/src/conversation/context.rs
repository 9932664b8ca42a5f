//! What a turn's prompt knows beyond the conversation: memories recalled by
//! meaning, the user's style, and research for knowledge gaps. The result is
//! the system prompt and a trace of what went into it, stored with the turn.

use crate::curiosity::{Researcher, detect_gap, research_section};
use crate::domain::{ChatMessage, ChatRole, MemoryKind, ModelRole, Turn};
use crate::memory::{MemoryService, Recalled, WorkingMemory};
use crate::personality::{PersonalityService, ReadProfile};
use crate::ports::{LlmBackend, MemoryRepository, Reference};
use crate::text::clip;
use serde::Serialize;
use std::sync::Arc;

/// The services a turn may draw on; each is optional.
#[derive(Clone)]
pub struct Mind {
    pub working: WorkingMemory,
    /// Where turns, memories and profiles are deleted when a user asks.
    pub records: Option<Arc<dyn MemoryRepository>>,
    pub memory: Option<Arc<MemoryService>>,
    pub personality: Option<Arc<PersonalityService>>,
    pub research: Option<Arc<Researcher>>,
    /// What replies leave to do after them, waited for at shutdown.
    pub after: Arc<crate::pending::Pending>,
}

/// What went into a turn's prompt, kept with the turn.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ContextTrace {
    /// The memory section as the model saw it. Stored traces leave it
    /// out: it is rendered again from `memories` when the trace is read.
    pub memory_section: String,
    pub memories: Vec<TracedMemory>,
    pub style: String,
    pub research: Vec<TracedSource>,
    /// A knowledge gap was found in the question.
    pub gap: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TracedMemory {
    pub id: String,
    pub kind: String,
    pub text: String,
    pub score: f32,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TracedSource {
    pub title: String,
    pub url: String,
    pub provider: String,
}

/// What a turn's context is drawn for.
pub struct ContextRequest<'a> {
    /// The configured system prompt, which comes first.
    pub base: &'a str,
    pub user_id: i64,
    pub message: &'a str,
    /// The turns already in the prompt (not recalled again), newest first.
    pub history: &'a [Turn],
    /// Whose backends count the tokens.
    pub role: ModelRole,
    /// Recalled memories take at most this many tokens.
    pub max_memory_tokens: usize,
}

/// A turn's context: what goes before the history, what goes after it, and
/// the trace of both.
#[derive(Debug, Clone, Default)]
pub struct TurnContext {
    /// The system prompt: the base, the user's style, remembered facts.
    pub system: String,
    /// For this message only, after the history: recalled exchanges and
    /// research.
    pub note: String,
    pub trace: ContextTrace,
    /// The message's embedding, made for recall; learning from the turn
    /// stores it rather than embedding the message again.
    pub query_vector: Option<Vec<f32>>,
    /// The user's style profile as read for the prompt; learning from the
    /// turn folds the message into it rather than reading it again.
    pub profile: Option<ReadProfile>,
}

impl Mind {
    /// The context of a turn. Failures of memory, profile or research are
    /// logged and leave their part out: a reply never fails for want of
    /// context.
    pub async fn context(&self, llm: &dyn LlmBackend, req: &ContextRequest<'_>) -> TurnContext {
        let ContextRequest {
            base,
            user_id,
            message,
            history,
            role,
            max_memory_tokens,
        } = *req;
        let mut trace = ContextTrace::default();
        let mut parts = vec![base.to_string()];
        let mut notes: Vec<String> = Vec::new();
        let mut profile = None;
        if let Some(p) = &self.personality {
            match p.read(user_id).await {
                Ok(read) => {
                    trace.style = read.profile.instruction();
                    profile = Some(read);
                }
                Err(e) => tracing::warn!(error = %e, "style profile unavailable"),
            }
            if !trace.style.is_empty() {
                parts.push(trace.style.clone());
            }
        }
        let mut best = None;
        let mut query_vector = None;
        if let Some(memory) = &self.memory {
            let exclude: Vec<String> = history.iter().map(|t| t.id.clone()).collect();
            let recalled = match memory.embed_query(message).await {
                Ok(v) => {
                    let recalled = memory.recall(user_id, &v, &exclude).await;
                    query_vector = Some(v);
                    recalled
                }
                Err(e) => Err(e),
            };
            match recalled {
                Ok(recalled) => {
                    best = recalled.first().map(|r| r.score);
                    // Memories never take more than a quarter of the
                    // prompt, so recent history keeps its place.
                    let budget = memory.options().recall_max_tokens.min(max_memory_tokens);
                    let (facts, turns, used) = fit_section(llm, role, &recalled, budget).await;
                    trace.memories = used
                        .iter()
                        .map(|r| TracedMemory {
                            id: r.id.clone(),
                            kind: r.kind.as_str().into(),
                            text: r.text.clone(),
                            score: (r.score * 1000.0).round() / 1000.0,
                        })
                        .collect();
                    trace.memory_section = joined(&facts, &turns);
                    // Facts change rarely: in the system prompt they stay in
                    // the engine's prompt cache. Past exchanges depend on
                    // the question, so they go in the note after the
                    // history, leaving the cached start of the prompt alone.
                    parts.push(facts);
                    notes.push(turns);
                }
                Err(e) => tracing::warn!(error = %e, "memory recall failed"),
            }
        }
        let gap = self
            .research
            .as_ref()
            .and_then(|r| detect_gap(message, best, r.options().gap_similarity).map(|g| (r, g)));
        if let Some((research, gap)) = gap {
            {
                trace.gap = true;
                let found: Vec<Reference> = research.research(&gap.query).await;
                trace.research = found
                    .iter()
                    .map(|r| TracedSource {
                        title: r.title.clone(),
                        url: r.url.clone(),
                        provider: r.provider.clone(),
                    })
                    .collect();
                notes.push(research_section(&found));
            }
        }
        parts.retain(|p| !p.trim().is_empty());
        notes.retain(|p| !p.trim().is_empty());
        TurnContext {
            system: parts.join("\n\n"),
            note: notes.join("\n\n"),
            trace,
            query_vector,
            profile,
        }
    }
}

/// The facts and the exchanges sections, with as many of the recalled
/// memories (best first) as fit in `budget` tokens together.
async fn fit_section(
    llm: &dyn LlmBackend,
    role: ModelRole,
    recalled: &[Recalled],
    budget: usize,
) -> (String, String, Vec<Recalled>) {
    let render = |items: &[Recalled]| sections(items.iter().map(|r| (r.kind, r.text.as_str())));
    let prompt = |(facts, turns): &(String, String)| {
        vec![
            ChatMessage::new(ChatRole::System, facts.clone()),
            ChatMessage::new(ChatRole::System, turns.clone()),
        ]
    };
    let count = |prompts: Vec<Vec<ChatMessage>>| async move {
        llm.count_tokens(role, &prompts)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "counting recalled memories failed"))
            .ok()
    };
    let none = (String::new(), String::new(), Vec::new());
    if recalled.is_empty() {
        return none;
    }
    // Usually every memory recalled fits: one count of them all. Otherwise
    // every shorter candidate (the best 1, 2, ... n - 1) in one more call.
    let all = render(recalled);
    match count(vec![prompt(&all)]).await.as_deref() {
        Some([tokens]) if *tokens <= budget => return (all.0, all.1, recalled.to_vec()),
        Some(_) => {}
        None => return none,
    }
    let rendered: Vec<(String, String)> = (1..recalled.len())
        .map(|keep| render(&recalled[..keep]))
        .collect();
    let Some(counts) = count(rendered.iter().map(prompt).collect()).await else {
        return none;
    };
    match counts.iter().rposition(|&tokens| tokens <= budget) {
        Some(i) => {
            let (facts, turns) = rendered[i].clone();
            (facts, turns, recalled[..=i].to_vec())
        }
        None => none,
    }
}

/// The facts section and the exchanges section of recalled memories, in
/// their order (best first).
fn sections<'a>(items: impl Iterator<Item = (MemoryKind, &'a str)> + Clone) -> (String, String) {
    let mut f = String::new();
    for text in items
        .clone()
        .filter(|(k, _)| *k == MemoryKind::Fact)
        .map(|(_, t)| t)
    {
        if f.is_empty() {
            f.push_str("What you remember about the user:");
        }
        f.push_str(&format!("\n- {text}"));
    }
    let mut t = String::new();
    for text in items
        .filter(|(k, _)| *k == MemoryKind::Turn)
        .map(|(_, t)| t)
    {
        if t.is_empty() {
            t.push_str("Earlier exchanges with the user that may help:");
        }
        t.push_str(&format!("\n- {}", brief_exchange(text)));
    }
    (f, t)
}

/// The memory section as the model saw it: both sections, one after the
/// other.
fn joined(facts: &str, turns: &str) -> String {
    [facts, turns]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

impl ContextTrace {
    /// The trace as stored with its turn: without the memory section,
    /// which is rendered again from `memories` when the trace is read
    /// ([`with_section`](Self::with_section)).
    pub(super) fn for_storage(&self) -> ContextTrace {
        ContextTrace {
            memory_section: String::new(),
            ..self.clone()
        }
    }

    /// A stored trace with its memory section: as stored (traces written
    /// before sections were rendered on reading hold theirs), else rendered
    /// from the recalled memories, as the prompt had it.
    pub(super) fn with_section(mut self) -> ContextTrace {
        if self.memory_section.is_empty() {
            let items = self
                .memories
                .iter()
                .map(|m| (MemoryKind::from_stored(&m.kind), m.text.as_str()));
            let (facts, turns) = sections(items);
            self.memory_section = joined(&facts, &turns);
        }
        self
    }
}

/// A stored exchange (`User: ...\nAssistant: ...`) as one short line: the
/// question, and the first sentence of the answer. Every recalled token is
/// read by the engine before the reply starts, so this is kept brief.
fn brief_exchange(text: &str) -> String {
    match text.split_once("\nAssistant: ") {
        Some((asked, answered)) => {
            let asked = asked.strip_prefix("User: ").unwrap_or(asked);
            format!(
                "They asked \"{}\"; you answered \"{}\"",
                clip(asked, 160),
                clip(first_sentence(answered), 100)
            )
        }
        None => clip(text, 200),
    }
}

/// Up to the end of the first sentence that is at least a few words long.
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    let mut from = 0;
    while let Some(at) = text[from..].find(['.', '!', '?', '\n']) {
        let end = from + at;
        let next = text[end + 1..].chars().next();
        if end >= 20 && next.is_none_or(char::is_whitespace) {
            return text[..end + 1].trim_end();
        }
        from = end + 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_is_the_question_and_the_first_sentence_of_the_answer() {
        let stored = "User: How long should I steep green tea?\nAssistant: About two to three minutes, at 80 °C. Longer makes it bitter.";
        assert_eq!(
            brief_exchange(stored),
            "They asked \"How long should I steep green tea?\"; you answered \"About two to three minutes, at 80 °C.\""
        );
    }

    #[test]
    fn long_answers_are_cut_at_a_word() {
        let answer = "word ".repeat(60);
        let line = brief_exchange(&format!("User: Tell me.\nAssistant: {answer}"));
        let said = line.split("you answered \"").nth(1).unwrap();
        assert!(said.ends_with("…\""), "{line}");
        assert!(said.chars().count() <= 103, "{line}");
        assert!(!said.contains("wor…"), "cut inside a word: {line}");
    }

    #[test]
    fn short_or_dotted_openings_are_not_taken_for_a_sentence() {
        assert_eq!(
            first_sentence("Use v1.2 of the tool, then restart it. Done."),
            "Use v1.2 of the tool, then restart it."
        );
        assert_eq!(
            first_sentence("Yes. It does, as the docs say."),
            "Yes. It does, as the docs say."
        );
        assert_eq!(first_sentence("No full stop here"), "No full stop here");
    }

    fn recalled() -> Vec<Recalled> {
        let memory = |id: &str, kind, text: &str, score| Recalled {
            id: id.into(),
            kind,
            text: text.into(),
            score,
        };
        use crate::domain::MemoryKind::{Fact, Turn};
        vec![
            memory("a", Fact, "Lives in Lisbon.", 0.9),
            memory(
                "b",
                Turn,
                "User: Tea?\nAssistant: Green, at 80 degrees.",
                0.8,
            ),
            memory("c", Fact, "Works on the Orion project.", 0.7),
            memory("d", Turn, "User: Basil?\nAssistant: Water it often.", 0.6),
        ]
    }

    async fn fit(budget: usize) -> (Vec<String>, String, String, Vec<usize>) {
        let llm = super::super::counting::Words::default();
        let (facts, turns, used) = fit_section(&llm, ModelRole::General, &recalled(), budget).await;
        let calls = llm.0.lock().unwrap().clone();
        (
            used.into_iter().map(|r| r.id).collect(),
            facts,
            turns,
            calls,
        )
    }

    #[tokio::test]
    async fn recalled_memories_that_all_fit_are_counted_once() {
        let (used, facts, turns, calls) = fit(1000).await;
        assert_eq!(used, ["a", "b", "c", "d"]);
        assert_eq!(
            facts,
            "What you remember about the user:\n- Lives in Lisbon.\n- Works on the Orion project."
        );
        assert!(
            turns.starts_with(
                "Earlier exchanges with the user that may help:\n- They asked \"Tea?\""
            )
        );
        assert!(turns.contains("\n- They asked \"Basil?\""), "{turns}");
        assert_eq!(calls, [1], "one count of the whole section");
    }

    #[tokio::test]
    async fn the_best_memories_that_fit_the_budget_are_kept() {
        let all = fit(1000).await;
        let everything = all.1.split_whitespace().count() + all.2.split_whitespace().count() + 8;
        let (used, _, _, calls) = fit(everything).await;
        assert_eq!(used, ["a", "b", "c", "d"], "a budget of exactly the whole");
        let (used, facts, turns, calls_cut) = fit(everything - 1).await;
        assert_eq!(used, ["a", "b", "c"]);
        assert!(
            facts.contains("Orion") && !turns.contains("Basil"),
            "{turns}"
        );
        assert_eq!((calls, calls_cut), (vec![1], vec![1, 3]));
        let (used, facts, turns, _) = fit(18).await;
        assert_eq!(used, ["a"], "{facts} / {turns}");
        assert!(turns.is_empty());
        let (used, facts, turns, _) = fit(17).await;
        assert!(used.is_empty() && facts.is_empty() && turns.is_empty());
    }

    #[tokio::test]
    async fn a_stored_trace_leaves_the_section_out_and_reads_back_as_the_prompt_had_it() {
        let (_, facts, turns, _) = fit(1000).await;
        let trace = ContextTrace {
            memory_section: joined(&facts, &turns),
            memories: recalled()
                .iter()
                .map(|r| TracedMemory {
                    id: r.id.clone(),
                    kind: r.kind.as_str().into(),
                    text: r.text.clone(),
                    score: r.score,
                })
                .collect(),
            ..ContextTrace::default()
        };
        let stored = serde_json::to_string(&trace.for_storage()).unwrap();
        assert!(!stored.contains("What you remember"), "{stored}");
        assert!(!stored.contains("They asked"), "{stored}");
        let read: ContextTrace = serde_json::from_str(&stored).unwrap();
        assert_eq!(read.with_section(), trace);
        // A trace stored with its section keeps it as it was.
        let older = ContextTrace {
            memory_section: "What you remember about the user:\n- Older wording.".into(),
            ..trace.clone()
        };
        assert_eq!(older.clone().with_section(), older);
    }

    #[test]
    fn text_without_the_exchange_shape_is_kept_on_one_line() {
        assert_eq!(
            brief_exchange("a note\nover two lines"),
            "a note over two lines"
        );
    }
}
