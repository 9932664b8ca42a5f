//! The arguments of `mongars bench ...`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Start `mongars serve` on a temporary SQLite database and report time to
    /// /ready, idle and peak RSS, POST /token throughput next to raw argon2
    /// verification on the same cores, and /healthz latency under login load.
    Auth(BenchArgs),
    /// Compare the embedded engine with the plain llama-cpp-2 decode loop on
    /// the same model, prompt and threads (tokens/s, time to first token),
    /// then measure the chat pipeline's cost outside generation with stored
    /// history on SQLite, 1 to 8 concurrent streams against a raw batched
    /// loop, and the chat at which a history window moves (kept turns moved
    /// down the cache against read again).
    Generate(GenerateArgs),
    /// Router overhead per request against a fake backend that answers at
    /// once (next to the raw backend), and failover time from a dead primary
    /// with its breaker closed and open.
    Router(RouterArgs),
    /// Peers: hand-off overhead next to the peer's own engine, three nodes'
    /// throughput against one, and the time to mark a stopped peer down.
    Peers(PeersBenchArgs),
    /// Vector recall over one user's memories (int8 index next to an exact
    /// float scan: speed and recall@10), embedding throughput, and chat reply
    /// latency with memory on next to memory off.
    Memory(MemoryBenchArgs),
    /// Idle WebSocket connections held by one `mongars serve` (its RSS and
    /// the memory per connection), and event fan-out latency from a chat's
    /// completion to socket delivery, in process and through Redis.
    Realtime(RealtimeBenchArgs),
    /// Chats per second over HTTP through the whole pipeline of a `mongars
    /// serve` process, with an instant fake backend in a process of its own:
    /// SQLite and PostgreSQL, memory on and off, fresh users and users with
    /// stored turns, 4, 16 and 64 connections; p50, p99 and server CPU by
    /// thread; then rounds alternating new users with those of the most
    /// stored turns, and the median of their ratios.
    Chat(ChatBenchArgs),
    /// A LoRA run on the embedded model for a generated user with a terse,
    /// signed answering style: training speed, peak memory, perplexity on
    /// held-out chats and on the shipped general set before and after, and
    /// greedy replies with and without the adapter
    Train(TrainBenchArgs),
    /// More concurrent chats than the embedded engine can serve in time,
    /// against a `mongars serve` child on its default settings: how they are
    /// answered (200 or 503 with Retry-After), how fast a refusal comes,
    /// /healthz and /ready latency meanwhile next to the idle server's, and
    /// the server's RSS.
    Overload(OverloadBenchArgs),
    /// Mixed traffic (chats over HTTP and WebSocket, logins, memory edits,
    /// history reads) against a `mongars serve` child for a while: per
    /// minute requests, errors, p50/p99, RSS, open descriptors and database
    /// size, then the RSS and descriptor slopes after warm-up.
    Soak(SoakBenchArgs),
    /// The instant OpenAI-compatible backend of `bench chat` (prints its
    /// URL, serves until stopped).
    #[command(hide = true)]
    FakeOpenai,
}

#[derive(Debug, clap::Args)]
pub struct TrainBenchArgs {
    /// Wall-clock budget of the training itself.
    #[arg(long, default_value_t = 15.0)]
    pub minutes: f64,
    /// Optimiser steps (the schedule's length; the budget may end it first).
    #[arg(long, default_value_t = 120)]
    pub steps: usize,
    /// Chats per optimiser step.
    #[arg(long, default_value_t = 4)]
    pub accumulation: usize,
    /// Training chats generated (a quarter as many are held out).
    #[arg(long, default_value_t = 160)]
    pub examples: usize,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Top blocks adapted.
    #[arg(long, default_value_t = 8)]
    pub layers: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Share of replay exchanges in training (default: training.replay_share).
    #[arg(long)]
    pub replay: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct ChatBenchArgs {
    /// Users chatting, in turn.
    #[arg(long, default_value_t = 256)]
    pub users: usize,
    /// Stored turns per user at the start of the later parts of the table
    /// (comma-separated; each part starts once every user has that many;
    /// beyond `memory.working.max_turns` chats also take old turns out of
    /// working memory).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub turns: Vec<u32>,
    /// Chats measured per cell.
    #[arg(long, default_value_t = 3000)]
    pub requests: usize,
    /// Rounds of the closing comparison at 4 connections: new users
    /// against those with the most stored turns, one cell after the other
    /// in every round, so that both see the same machine (0 leaves it out).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Also measure on a new database of this PostgreSQL server
    /// (postgres://USER@HOST/DB; the account must be allowed to create
    /// databases).
    #[arg(long)]
    pub postgres: Option<String>,
    /// Only the rows with memory on, or off.
    #[arg(long, value_parser = ["on", "off"])]
    pub memory: Option<String>,
    /// The measured server's log filter (`logging.level` syntax, e.g.
    /// `warn,sqlx::query=debug` for every statement with its time); its
    /// log goes to this command's standard error.
    #[arg(long, default_value = "error")]
    pub server_log: String,
}

#[derive(Debug, clap::Args)]
pub struct SoakBenchArgs {
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Users driving traffic at once.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds per row (a minute unless shortened for a quick look).
    #[arg(long, default_value_t = 60.0)]
    pub interval_secs: f64,
    /// Readings of the server's memory and descriptors per row, evenly
    /// spread; the row shows their median.
    #[arg(long, default_value_t = 6)]
    pub samples: usize,
    /// Actions after which a client becomes a new user (0: never).
    #[arg(long, default_value_t = 150)]
    pub rotate_every: usize,
}

#[derive(Debug, clap::Args)]
pub struct OverloadBenchArgs {
    /// Chats sent at once in each round.
    #[arg(long, default_value_t = 40)]
    pub chats: usize,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Debug, clap::Args)]
pub struct RealtimeBenchArgs {
    /// Idle sockets to open.
    #[arg(long, default_value_t = 5000)]
    pub connections: usize,
    /// Chats whose event delivery is timed.
    #[arg(long, default_value_t = 100)]
    pub events: usize,
    /// Also time fan-out through this Redis (redis://HOST:PORT).
    #[arg(long)]
    pub redis: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct MemoryBenchArgs {
    /// Memories in the index.
    #[arg(long, default_value_t = 100_000)]
    pub memories: u32,
    /// Searches measured.
    #[arg(long, default_value_t = 200)]
    pub queries: u32,
    /// Chat turns with memory on and as many off.
    #[arg(long, default_value_t = 20)]
    pub turns: u32,
}

#[derive(Debug, clap::Args)]
pub struct PeersBenchArgs {
    /// `embedded`: every node runs the model of `llm.embedded` (one
    /// thread each); `simulated`: every node runs one generation at a time
    /// at `--token-ms` per token, as separate boxes would.
    #[arg(long, default_value = "simulated", value_parser = ["simulated", "embedded"])]
    pub engine: String,
    /// Milliseconds per token of the simulated engine.
    #[arg(long, default_value_t = 20)]
    pub token_ms: u64,
    /// Tokens per reply.
    #[arg(long, default_value_t = 32)]
    pub tokens: u32,
    /// Requests timed for the hand-off overhead.
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Concurrent clients of the throughput runs.
    #[arg(long, default_value_t = 9)]
    pub clients: usize,
    /// Generations per throughput run.
    #[arg(long, default_value_t = 45)]
    pub generations: usize,
}

#[derive(Debug, clap::Args)]
pub struct RouterArgs {
    /// Requests per measurement.
    #[arg(long, default_value_t = 2000)]
    pub requests: u32,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Tokens generated per run.
    #[arg(long, default_value_t = 128)]
    pub tokens: u32,
    /// Runs of each engine (medians are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Stored turns of the user for the pipeline measurement.
    #[arg(long, default_value_t = 1000)]
    pub turns: u32,
    /// Run one part only (all of them by default).
    #[arg(long, value_enum)]
    pub only: Option<GeneratePart>,
}

/// The parts of `mongars bench generate`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratePart {
    /// One reply: engine against the raw loop.
    Single,
    /// The chat pipeline around generation and the prompt cache.
    Pipeline,
    /// 1, 2, 4 and 8 replies at once against the raw batched loop.
    Sweep,
    /// The model file against its widened weights.
    Weights,
    /// Kept turns moved down the cache against read again.
    Moves,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent clients (default: twice the CPU cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}
