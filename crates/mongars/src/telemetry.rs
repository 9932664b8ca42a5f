//! Logging set-up: text or JSON on stderr, filtered by `logging.level`.
//! Colours only when stderr is a terminal: a file or a pipe gets plain text.
//! What is never logged is described in `mongars_http::middleware`.

use mongars_config::{LogFormat, LoggingSettings};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(settings: &LoggingSettings) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(&settings.level).map_err(|e| anyhow::anyhow!("logging.level: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
