//! Logging set-up: text or JSON on stderr, filtered by `logging.level`.
//! What is never logged is described in `mongars_http::middleware`.

use mongars_config::{LogFormat, LoggingSettings};
use tracing_subscriber::EnvFilter;

pub fn init(settings: &LoggingSettings) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(&settings.level).map_err(|e| anyhow::anyhow!("logging.level: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
