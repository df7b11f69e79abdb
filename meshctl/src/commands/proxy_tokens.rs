//! `meshctl proxy-token create|list|revoke`: the tokens proxies present on the xDS port
//! (`/api/v1/proxy-tokens`). The secret is printed once, by `create`; the server keeps only
//! its hash.

use serde_json::{Value, json};

use crate::{
    cli::{Format, ProxyTokenCommand},
    client::Client,
    error::Error,
    output::{json as pretty, out, table},
};

pub async fn run(client: &Client, command: ProxyTokenCommand) -> Result<(), Error> {
    match command {
        ProxyTokenCommand::Create {
            node,
            cluster,
            description,
            output,
        } => {
            let mut body = json!({ "node_id": node, "node_cluster": cluster });
            if let Some(d) = description {
                body["description"] = d.into();
            }
            let issued = client.post("/api/v1/proxy-tokens", &body).await?;
            match output {
                Format::Table => {
                    eprintln!(
                        "proxy token {} for node '{node}' in cluster '{cluster}' (the secret below is shown only once):",
                        issued["id"].as_str().unwrap_or_default()
                    );
                    out(&format!(
                        "{}\n",
                        issued["token"].as_str().unwrap_or_default()
                    ));
                }
                Format::Json => out(&pretty(&issued)),
                Format::Yaml => out(&serde_yaml_ng::to_string(&issued).unwrap_or_default()),
            }
        }
        ProxyTokenCommand::List { output } => {
            let list = client
                .get("/api/v1/proxy-tokens", &Vec::<(&str, &str)>::new())
                .await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            match output {
                Format::Table if items.is_empty() => eprintln!("no proxy tokens"),
                Format::Table => out(&table(
                    &["ID", "NODE", "CLUSTER", "CREATED", "DESCRIPTION"],
                    &items.iter().map(row).collect::<Vec<_>>(),
                )),
                Format::Json => out(&pretty(&list)),
                Format::Yaml => out(&serde_yaml_ng::to_string(&list).unwrap_or_default()),
            }
        }
        ProxyTokenCommand::Revoke { id } => {
            client
                .delete(&format!("/api/v1/proxy-tokens/{}", encode(&id)), None)
                .await?;
            eprintln!("proxy token {id} revoked");
        }
    }
    Ok(())
}

fn row(t: &Value) -> Vec<String> {
    ["id", "node_id", "node_cluster", "created_at", "description"]
        .iter()
        .map(|k| t[*k].as_str().unwrap_or("-").to_string())
        .collect()
}

/// The id as one path segment (ids are `pt-<hex>`, but a typo must not change the path).
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
