//! `meshctl delete KIND NAME` and `meshctl delete -f FILE`: dependents first, going on after a
//! failure. A service's endpoints have no DELETE (they are replaced as a whole): deleting
//! them empties the list.

use super::report_failure;
use crate::{
    cli::DeleteArgs,
    client::{Client, ClientError},
    error::Error,
    kind::Kind,
    manifest,
    output::out,
};

pub async fn run(client: &Client, args: DeleteArgs) -> Result<(), Error> {
    let mut targets: Vec<(Kind, String)> = match (args.kind, args.name) {
        (Some(kind), Some(name)) => {
            manifest::check_name(&name).map_err(|m| Error::Input(format!("{kind}: {m}")))?;
            vec![(kind, name)]
        }
        _ => manifest::load(&args.files)?
            .into_iter()
            .map(|o| (o.kind, o.name))
            .collect(),
    };
    // Reverse dependency order: listeners before the routes they name, and so on.
    targets.sort_by_key(|(kind, _)| std::cmp::Reverse(*kind));
    let single = targets.len() == 1;
    let mut failed = 0;
    for (kind, name) in &targets {
        let id = format!("{kind}/{name}");
        let path = kind.path(name);
        let result = if *kind == Kind::Endpoints {
            client.clear_endpoints(&path).await.map(|()| "emptied")
        } else {
            client.delete(&path, None).await.map(|()| "deleted")
        };
        match result {
            Ok(done) => out(&format!("{id} {done}\n")),
            Err(ClientError::Refused(e)) if e.status == 404 && args.ignore_not_found => {}
            Err(ClientError::Refused(e)) if single => {
                return Err(Error::Failed(format!("{id}: {e}")));
            }
            Err(ClientError::Refused(e)) => {
                failed += 1;
                report_failure(&id, &e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Error::Failed(format!(
            "{n} of {} object(s) could not be deleted",
            targets.len()
        ))),
    }
}
