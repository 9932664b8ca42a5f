//! What a turn gives back: the finished reply, the events of a streamed
//! one, and the confidence figure both carry.

use crate::domain::{GenerationUsage, SpeechTurn};
use crate::error::CoreError;
use serde::Serialize;

/// A finished reply, as the chat endpoints return it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ChatReply {
    #[serde(skip)]
    pub turn_id: String,
    pub response: String,
    /// exp(mean token log-probability): the model's average probability for
    /// the tokens it chose, 0..1. 0.5 when the backend cannot tell.
    pub confidence: f64,
    /// Seconds from the request to the end of the reply.
    pub processing_time: f64,
    pub speech_turn: SpeechTurn,
    #[serde(skip)]
    pub usage: GenerationUsage,
}

/// What a streamed chat yields: text as it comes, then the reply or an error.
#[derive(Debug)]
pub enum ChatEvent {
    Delta(String),
    Done(Box<ChatReply>),
    Error(CoreError),
}

/// Map a mean log-probability to a 0..1 confidence.
pub fn confidence_from_logprob(mean_logprob: Option<f64>) -> f64 {
    mean_logprob
        .filter(|l| l.is_finite())
        .map_or(0.5, |l| (l.exp() * 1000.0).round() / 1000.0)
        .clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_is_the_mean_token_probability() {
        assert_eq!(confidence_from_logprob(Some(0.0)), 1.0);
        assert_eq!(confidence_from_logprob(Some(-std::f64::consts::LN_2)), 0.5);
        assert_eq!(confidence_from_logprob(None), 0.5);
        assert_eq!(confidence_from_logprob(Some(f64::NEG_INFINITY)), 0.5);
    }
}
