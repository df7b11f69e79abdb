//! `meshctl bootstrap NODE`: the server's ready Envoy bootstrap for one proxy
//! (`GET /api/v1/bootstrap`), printed as the server wrote it (YAML; JSON is YAML too).

use crate::{
    cli::{BootstrapArgs, Variant},
    client::Client,
    error::Error,
    output::out,
};

pub async fn run(client: &Client, args: BootstrapArgs) -> Result<(), Error> {
    out(&client.get_text("/api/v1/bootstrap", &query(&args)).await?);
    Ok(())
}

/// The query `api/bootstrap.rs` reads: `node_id`, `cluster`, `delta`, `ads`, `admin_port`,
/// `xds_host`, `metadata.<key>`. Unset options are left to the server's defaults.
fn query(args: &BootstrapArgs) -> Vec<(String, String)> {
    let mut q = vec![("node_id".to_string(), args.node.clone())];
    if let Some(c) = &args.cluster {
        q.push(("cluster".into(), c.clone()));
    }
    if args.variant == Variant::Delta {
        q.push(("delta".into(), "true".into()));
    }
    if args.no_ads {
        q.push(("ads".into(), "false".into()));
    }
    if let Some(p) = args.admin_port {
        q.push(("admin_port".into(), p.to_string()));
    }
    if let Some(h) = &args.xds_host {
        q.push(("xds_host".into(), h.clone()));
    }
    for (k, v) in &args.metadata {
        q.push((format!("metadata.{k}"), v.clone()));
    }
    if args.issue_token {
        q.push(("token".into(), "issue".into()));
    }
    q
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn flags_become_the_servers_query() {
        let cli = Cli::parse_from([
            "meshctl",
            "bootstrap",
            "edge-1",
            "--cluster",
            "ingress",
            "--variant",
            "delta",
            "--no-ads",
            "--admin-port",
            "9902",
            "--metadata",
            "role=edge",
            "--issue-token",
        ]);
        let Command::Bootstrap(args) = cli.command else {
            panic!("not bootstrap");
        };
        let q: Vec<String> = query(&args)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            q,
            [
                "node_id=edge-1",
                "cluster=ingress",
                "delta=true",
                "ads=false",
                "admin_port=9902",
                "metadata.role=edge",
                "token=issue"
            ]
        );
    }
}
