//! `meshctl apply`: plan every object against the server (read it, ask the server what it
//! would store with a dry run, compare), refuse the whole apply when the server refuses any
//! object, then write what changed in dependency order and prune.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{parse_selector, report_failure};
use crate::{
    apply::{self, Action, Prune},
    cli::ApplyArgs,
    client::{Client, ClientError, ServerError},
    error::Error,
    kind::Kind,
    manifest::{self, Object},
    output::out,
};

/// What the plan found for one object.
enum Step {
    /// The server checked it; `desired` is what it would store.
    Checked { action: Action, desired: Value },
    /// It names objects this apply creates, so the server cannot check it before they exist.
    Unchecked { pending: Vec<(Kind, String)> },
    /// The server would refuse it.
    Refused(ServerError),
}

struct Planned {
    object: Object,
    /// What the server has now (`None`: absent, or its service is).
    current: Option<Value>,
    step: Step,
}

pub async fn run(client: &Client, args: ApplyArgs) -> Result<(), Error> {
    let selector = args.selector.as_deref().map(parse_selector).transpose()?;
    let mut objects = manifest::load(&args.files)?;
    apply::order(&mut objects);
    if let Some(selector) = &selector {
        for o in objects.iter().filter(|o| o.kind.has_labels()) {
            if !apply::carries(&o.body, selector) {
                eprintln!(
                    "warning: {} ({}) does not carry the labels of --selector, so --prune will \
                     never delete it",
                    o.id(),
                    o.source
                );
            }
        }
    }
    let plan = plan(client, objects).await?;
    let prunes = match (&selector, args.prune) {
        (Some(_), true) => {
            prunes(client, &plan, args.selector.as_deref().unwrap_or_default()).await?
        }
        _ => Vec::new(),
    };
    let refused: Vec<&Planned> = plan
        .iter()
        .filter(|p| matches!(p.step, Step::Refused(_)))
        .collect();
    if args.dry_run {
        show(&plan, &prunes);
        return match refused.len() {
            0 => Ok(()),
            n => Err(Error::Failed(format!(
                "the server would refuse {n} object(s)"
            ))),
        };
    }
    if !refused.is_empty() {
        for p in &refused {
            if let Step::Refused(e) = &p.step {
                report_failure(&format!("{} ({})", p.object.id(), p.object.source), e);
            }
        }
        return Err(Error::Failed(format!(
            "the server refused {} object(s); nothing was written",
            refused.len()
        )));
    }
    write(client, &plan, &prunes).await
}

/// Reads each object and has the server check it, in dependency order.
async fn plan(client: &Client, objects: Vec<Object>) -> Result<Vec<Planned>, Error> {
    let mut creating: HashSet<(Kind, String)> = HashSet::new();
    let mut plan = Vec::new();
    for object in objects {
        let path = object.kind.path(&object.name);
        let current = client.get_opt(&path).await?;
        let pending: Vec<(Kind, String)> =
            apply::references(object.kind, &object.name, &object.body)
                .into_iter()
                .filter(|r| creating.contains(r))
                .collect();
        if current.as_ref().is_none_or(|c| apply::version(c) == 0) {
            creating.insert((object.kind, object.name.clone()));
        }
        let step = if pending.is_empty() {
            let body = body(&object.body, current.as_ref());
            match client.put(&path, &body, true).await {
                Ok(preview) => Step::Checked {
                    action: apply::decide(current.as_ref(), &preview.object),
                    desired: preview.object,
                },
                Err(ClientError::Refused(e)) => Step::Refused(e),
                Err(e) => return Err(e.into()),
            }
        } else {
            Step::Unchecked { pending }
        };
        plan.push(Planned {
            object,
            current,
            step,
        });
    }
    Ok(plan)
}

/// The body to PUT: the file's fields, written only at the version read (0: only if absent),
/// so a change made by someone else since the plan read it is a conflict, not overwritten.
fn body(fields: &Map<String, Value>, current: Option<&Value>) -> Value {
    let mut body = fields.clone();
    body.insert("version".into(), current.map_or(0, apply::version).into());
    Value::Object(body)
}

/// The labelled objects of the applied kinds that the files no longer name.
async fn prunes(client: &Client, plan: &[Planned], selector: &str) -> Result<Vec<Prune>, Error> {
    let named: HashSet<(Kind, String)> = plan
        .iter()
        .map(|p| (p.object.kind, p.object.name.clone()))
        .collect();
    let kinds: std::collections::BTreeSet<Kind> = plan
        .iter()
        .map(|p| p.object.kind)
        .filter(|k| k.has_labels())
        .collect();
    let mut listed = Vec::new();
    for kind in kinds {
        for object in client.list(kind.collection(), Some(selector)).await? {
            listed.push((kind, object));
        }
    }
    Ok(apply::prune(&listed, &named))
}

/// `--dry-run`: what each object would become, and what would be pruned.
fn show(plan: &[Planned], prunes: &[Prune]) {
    let mut text = String::new();
    for p in plan {
        let id = p.object.id();
        match &p.step {
            Step::Checked {
                action: Action::Unchanged,
                ..
            } => {
                text.push_str(&format!("{id} unchanged (dry run)\n"));
            }
            Step::Checked {
                action: Action::Create,
                desired,
            } => {
                text.push_str(&format!("{id} created (dry run)\n"));
                push_changes(
                    &mut text,
                    &apply::diff(&Value::Object(Map::new()), &apply::spec(desired)),
                );
            }
            Step::Checked {
                action: Action::Configure(changes),
                ..
            } => {
                text.push_str(&format!("{id} configured (dry run)\n"));
                push_changes(&mut text, changes);
            }
            Step::Unchecked { pending } => {
                let names: Vec<String> = pending.iter().map(|(k, n)| format!("{k}/{n}")).collect();
                let verb = if p.current.as_ref().is_some_and(|c| apply::version(c) > 0) {
                    "configured"
                } else {
                    "created"
                };
                text.push_str(&format!(
                    "{id} {verb} (dry run; not checked by the server: it names {}, which this \
                     apply creates; defaults not shown)\n",
                    names.join(", ")
                ));
                let current = p
                    .current
                    .as_ref()
                    .map_or(Value::Object(Map::new()), apply::spec);
                push_changes(
                    &mut text,
                    &apply::diff(&current, &Value::Object(p.object.body.clone())),
                );
            }
            Step::Refused(e) => {
                text.push_str(&format!(
                    "{id} would be refused ({}): {e}\n",
                    p.object.source
                ));
            }
        }
    }
    for prune in prunes {
        text.push_str(&format!("{}/{} pruned (dry run)\n", prune.kind, prune.name));
    }
    out(&text);
}

fn push_changes(text: &mut String, changes: &[apply::Change]) {
    for change in changes {
        text.push_str(&format!("  {change}\n"));
    }
}

/// Writes what the plan says changed, in order, going on after a failure; prunes only when
/// everything else was written.
async fn write(client: &Client, plan: &[Planned], prunes: &[Prune]) -> Result<(), Error> {
    let mut failed = 0;
    for p in plan {
        let id = p.object.id();
        if let Step::Checked {
            action: Action::Unchanged,
            ..
        } = p.step
        {
            out(&format!("{id} unchanged\n"));
            continue;
        }
        let path = p.object.kind.path(&p.object.name);
        match client
            .put(&path, &body(&p.object.body, p.current.as_ref()), false)
            .await
        {
            Ok(w) if w.created => out(&format!("{id} created\n")),
            Ok(_) => out(&format!("{id} configured\n")),
            Err(ClientError::Refused(e)) => {
                failed += 1;
                report_failure(&format!("{id} ({})", p.object.source), &e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if failed > 0 {
        if !prunes.is_empty() {
            eprintln!("prune skipped: not every object was applied");
        }
        return Err(Error::Failed(format!(
            "{failed} of {} object(s) failed",
            plan.len()
        )));
    }
    for prune in prunes {
        let id = format!("{}/{}", prune.kind, prune.name);
        match client
            .delete(&prune.kind.path(&prune.name), Some(prune.version))
            .await
        {
            Ok(()) => out(&format!("{id} pruned\n")),
            Err(ClientError::Refused(e)) if e.status == 404 => {
                out(&format!("{id} pruned (already gone)\n"))
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
        n => Err(Error::Failed(format!("{n} object(s) could not be pruned"))),
    }
}
