//! `docs/yaml-format.md` cannot rot: every `yaml` example in it is applied, in order, to a
//! fresh real server with `meshctl apply` (a dry run first, then for real, so later examples
//! may name objects earlier ones created), and every `yaml refused` example must be refused
//! with the message its `# refused:` line quotes, writing nothing.

mod support;

use support::Env;

/// One fenced example: its text, whether it must be refused, and the line it starts on.
struct Example {
    text: String,
    refused: bool,
    line: usize,
}

/// The `yaml` and `yaml refused` fenced blocks of a Markdown text.
fn examples(markdown: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut open: Option<Example> = None;
    for (i, line) in markdown.lines().enumerate() {
        match open.take() {
            None => {
                let info = line.strip_prefix("```yaml").map(str::trim);
                if let Some(info) = info {
                    open = Some(Example {
                        text: String::new(),
                        refused: info == "refused",
                        line: i + 1,
                    });
                }
            }
            Some(example) if line.trim_end() == "```" => out.push(example),
            Some(mut example) => {
                example.text.push_str(line);
                example.text.push('\n');
                open = Some(example);
            }
        }
    }
    assert!(open.is_none(), "an unclosed ```yaml block");
    out
}

#[tokio::test]
async fn every_example_in_the_yaml_format_page_applies() {
    let doc = support::repo().join("docs/yaml-format.md");
    let markdown = std::fs::read_to_string(&doc).expect("docs/yaml-format.md");
    let examples = examples(&markdown);
    assert!(
        examples.len() >= 10,
        "found only {} examples",
        examples.len()
    );
    assert!(examples.iter().any(|e| e.refused));

    let env = Env::start();
    for (i, example) in examples.iter().enumerate() {
        let at = format!("docs/yaml-format.md:{}", example.line);
        let file = env.file(&format!("example-{i}.yaml"), &example.text);
        if example.refused {
            let expected = example
                .text
                .lines()
                .find_map(|l| l.strip_prefix("# refused: "))
                .unwrap_or_else(|| panic!("{at}: a refused example needs a `# refused:` line"));
            let run = env.meshctl(&["apply", "-f", &file]);
            assert_eq!(run.code, 1, "{at}: must be refused by the server\n{run}");
            assert!(
                run.stderr.contains(expected),
                "{at}: the refusal must say {expected:?}\n{run}"
            );
            let dry = env.meshctl(&["apply", "--dry-run", "-f", &file]);
            assert_eq!(
                dry.code, 1,
                "{at}: --dry-run must say it would be refused\n{dry}"
            );
        } else {
            let dry = env.meshctl(&["apply", "--dry-run", "-f", &file]);
            assert_eq!(dry.code, 0, "{at}: --dry-run\n{dry}");
            let run = env.meshctl(&["apply", "-f", &file]);
            assert_eq!(run.code, 0, "{at}: apply\n{run}");
            // Applying the same example again finds nothing to change.
            let again = env.meshctl(&["apply", "-f", &file]);
            again.ok();
            assert!(
                again.lines().iter().all(|l| l.ends_with(" unchanged")),
                "{at}: applied twice\n{again}"
            );
        }
    }
}
