//! Parsing documents: what is accepted, and that every refusal names file and document.

use serde_json::json;

use super::*;

#[test]
fn yaml_streams_and_json_lists_become_objects() {
    let yaml = "kind: service\nname: web\nprotocol: http\n---\n---\nkind: routes\nname: web\n\
                hosts: ['*']\nrules: []\n";
    let objects = parse("mesh.yaml", yaml).unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].id(), "service/web");
    assert_eq!(
        objects[0].body,
        json!({ "protocol": "http" }).as_object().unwrap().clone()
    );
    assert_eq!(objects[1].kind, Kind::Route);
    assert_eq!(
        objects[1].source.document, 3,
        "the empty document still counts"
    );

    let json_list = r#"[{"kind": "service", "name": "a", "protocol": "http"},
                        {"kind": "endpoints", "name": "a", "endpoints": []}]"#;
    let objects = parse("list.json", json_list).unwrap();
    assert_eq!(objects[1].id(), "endpoints/a");
    assert_eq!(objects[1].source.to_string(), "list.json, document 2");
}

#[test]
fn what_get_prints_can_be_applied_again() {
    let got = "kind: service\nname: web\nversion: 3\ncreated_at: '2026-01-01T00:00:00Z'\n\
               updated_at: '2026-01-01T00:00:00Z'\nprotocol: http\nstatus:\n  proxies: 2\n\
               \x20 received: 2\n  accepted: 1\n  rejected: []\n";
    let objects = parse("got.yaml", got).unwrap();
    assert_eq!(objects[0].body.keys().collect::<Vec<_>>(), ["protocol"]);
}

#[test]
fn bad_documents_name_file_document_and_problem() {
    for (text, needle) in [
        ("kind: service\nprotocol: http\n", "`name` is missing"),
        ("name: web\nprotocol: http\n", "`kind` is missing"),
        ("kind: proxy\nname: web\nx: 1\n", "unknown kind 'proxy'"),
        (
            "kind: service\nname: Web\nprotocol: http\n",
            "'Web' is not a valid name",
        ),
        ("kind: service\nname: web\n", "has no fields"),
        ("kind: 3\nname: web\n", "`kind` must be a string"),
        ("- 1\n", "expected a mapping"),
        ("kind: endpoints\nendpoints: []\n", "the service's name"),
    ] {
        let text = format!("kind: service\nname: ok\nprotocol: http\n---\n{text}");
        let err = parse("mesh.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("mesh.yaml, document 2: "), "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn yaml_syntax_errors_name_the_file_and_line() {
    let err = parse("mesh.yaml", "kind: service\nname: [web\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("mesh.yaml: not valid YAML or JSON"),
        "{err}"
    );
    assert!(err.contains("line"), "{err}");
}

#[test]
fn load_refuses_duplicates_and_reads_directories_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "kind: route\nname: r\nhosts: []\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"kind": "service", "name": "s", "protocol": "http"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let objects = load(&[dir.path().to_path_buf()]).unwrap();
    let ids: Vec<String> = objects.iter().map(Object::id).collect();
    assert_eq!(ids, ["service/s", "route/r"]);

    std::fs::write(
        dir.path().join("c.yaml"),
        "kind: services\nname: s\nprotocol: tcp\n",
    )
    .unwrap();
    let err = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
    assert!(err.contains("service/s is also defined at"), "{err}");
    assert!(err.contains("a.json, document 1"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        load(&[empty.path().to_path_buf()]),
        Err(ManifestError::EmptyDir { .. })
    ));
    assert!(matches!(
        load(&[empty.path().join("missing.yaml")]),
        Err(ManifestError::Read { .. })
    ));
}
