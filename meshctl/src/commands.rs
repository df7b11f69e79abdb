//! Runs one parsed command: resolves where the server is, builds the client, dispatches.
//! Each command's I/O lives in its own module; the decisions they make are in `apply.rs` and
//! `output.rs`.

mod apply;
mod bootstrap;
mod delete;
mod get;
mod proxies;
mod proxy_tokens;
mod stat;
mod tap;

use clap::CommandFactory;

use crate::{
    cli::{Cli, Command},
    client::Client,
    config,
    error::Error,
};

pub async fn run(cli: Cli) -> Result<(), Error> {
    if let Command::Completion(args) = &cli.command {
        let mut text = Vec::new();
        clap_complete::generate(args.shell, &mut Cli::command(), "meshctl", &mut text);
        crate::output::out(&String::from_utf8_lossy(&text));
        return Ok(());
    }
    let settings = config::resolve(cli.global.server, cli.global.token_file, cli.global.config)?;
    let token = match &settings.token_file {
        Some(path) => Some(config::read_token(path)?),
        None => None,
    };
    let client = Client::new(&settings.server, token)?;
    match cli.command {
        Command::Apply(args) => apply::run(&client, args).await,
        Command::Get(args) => get::run(&client, args).await,
        Command::Delete(args) => delete::run(&client, args).await,
        Command::ProxyStatus(args) => proxies::status(&client, args).await,
        Command::ProxyConfig(args) => proxies::config(&client, args).await,
        Command::Bootstrap(args) => bootstrap::run(&client, args).await,
        Command::ProxyToken(command) => proxy_tokens::run(&client, command).await,
        Command::Stat(args) => stat::run(&client, args).await,
        Command::Tap(args) => tap::run(&client, args).await,
        Command::Completion(_) => Ok(()),
    }
}

/// `key=value[,key2=value2]`, checked enough to catch a typo before the server sees it (the
/// server checks keys and values fully).
pub(crate) fn parse_selector(text: &str) -> Result<Vec<(String, String)>, Error> {
    text.split(',')
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Error::Input(format!(
                        "selector '{text}': '{pair}' is not key=value; write e.g. \
                         --selector app=demo,tier=edge"
                    ))
                })
        })
        .collect()
}

/// Prints one failure as it happens (apply and delete go on with the rest).
pub(crate) fn report_failure(id: &str, error: &impl std::fmt::Display) {
    eprintln!("error: {id}: {error}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_pairs() {
        assert_eq!(
            parse_selector("app=demo,tier=").unwrap(),
            [
                ("app".to_string(), "demo".to_string()),
                ("tier".into(), String::new())
            ]
        );
        for bad in ["app", "=x", "app=demo,", ""] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }
}
