//! Memory: working memory (recent turns, bounded, with a TTL) and long-term
//! memory (facts about the user and past turns, recalled by meaning).

mod cache;
mod edit;
mod extract;
mod index;
mod service;
mod working;

pub use extract::{Fact, extract_facts, first_person};
pub use index::{Hit, VectorIndex, dot_i8, quantize};
pub use service::{Found, MemoryOptions, MemoryService, Recalled};
pub use working::{Position, WorkingMemory, WorkingMemoryOptions};
