//! `mongars train`: runs from a file or from a dataset version of the
//! database, and the dataset versions themselves.

mod dataset;
mod file;

use crate::cli::{TrainCommand, TrainObjective};
use mongars_config::Settings;

pub async fn run(cmd: TrainCommand, settings: Settings) -> anyhow::Result<i32> {
    match cmd {
        TrainCommand::Run {
            data: Some(data),
            out,
            minutes,
            steps,
            resume,
            objective,
            ..
        } => {
            let run = file::FileRun {
                data,
                out,
                minutes,
                steps,
                resume,
                mntp: objective == TrainObjective::Mntp,
            };
            file::run(run, settings).await
        }
        TrainCommand::Run {
            dataset: Some(_),
            objective: TrainObjective::Mntp,
            ..
        } => anyhow::bail!("dataset versions train chat adapters; MNTP runs take a file (--data)"),
        TrainCommand::Run {
            dataset: Some(dataset),
            minutes,
            steps,
            ..
        } => dataset::run(&dataset, minutes, steps, settings).await,
        TrainCommand::Run { .. } => anyhow::bail!("give --data FILE or --dataset ID"),
        TrainCommand::Dataset(cmd) => dataset::command(cmd, settings).await,
    }
}
