//! Headless Chromium for the console's tests, driven over the DevTools protocol (CDP) on a
//! pipe: no WebSocket, no Node.js, no driver download; Debian's `chromium` package is all it
//! needs. One browser per test binary ([`Browser::shared`]); each test opens its own window
//! (a window of its own is "visible", so the console's polling, which pauses in hidden tabs,
//! runs in every test at once).
//!
//! Waits are conditions with deadlines, checked inside the page ([`Page::wait_for`]); a
//! failed wait panics with what the page says and the JavaScript errors it logged.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Where Debian's `chromium` package puts the browser; `CHROMIUM_BIN` overrides it.
const DEFAULT_BIN: &str = "/usr/bin/chromium";

/// The flags this machine needs (no sandbox as root; no network beyond 127.0.0.1).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
    "--window-size=1280,900",
];

/// Prefix of each run's profile directory under the system temp dir; the pid follows.
const PROFILE_PREFIX: &str = "xds-console-chromium-";

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Errors = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A running Chromium. It exits when this process does (its end of the pipe closes).
pub struct Browser {
    writer: Mutex<ChildStdin>,
    pending: Pending,
    /// JavaScript exceptions and console errors, per page session.
    errors: Errors,
    next_id: AtomicU64,
    log: PathBuf,
    _child: Mutex<Child>,
}

impl Browser {
    /// The browser of this test binary, started on first use. `None` (skip announced) when
    /// Chromium is not installed; under `CI=true` that fails the test instead.
    pub fn shared() -> Option<&'static Browser> {
        static SHARED: OnceLock<Result<Browser, String>> = OnceLock::new();
        match SHARED.get_or_init(Browser::launch) {
            Ok(browser) => Some(browser),
            Err(why) if crate::in_ci() => panic!("CI=true and no browser: {why}"),
            Err(why) => {
                crate::announce_skip("headless Chromium", why);
                None
            }
        }
    }

    fn launch() -> Result<Browser, String> {
        let bin = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| DEFAULT_BIN.into());
        if !Path::new(&bin).exists() {
            return Err(format!(
                "{bin} not found; install Debian's chromium package or set CHROMIUM_BIN \
                 (scripts/test.sh installs it)"
            ));
        }
        let tmp = std::env::temp_dir();
        remove_stale_profiles(&tmp);
        let profile = tmp.join(format!("{PROFILE_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).map_err(|e| format!("{}: {e}", profile.display()))?;
        let log = profile.with_extension("log");
        let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        // CDP's pipe is fds 3 (commands in) and 4 (answers out): the shell moves our pipes
        // there, so no unsafe pre-exec code is needed.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(&bin)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let writer = child.stdin.take().expect("piped stdin");
        let reader = child.stdout.take().expect("piped stdout");
        let pending: Pending = Arc::default();
        let errors: Errors = Arc::default();
        std::thread::spawn({
            let (pending, errors) = (pending.clone(), errors.clone());
            move || read_messages(reader, &pending, &errors)
        });
        Ok(Browser {
            writer: Mutex::new(writer),
            pending,
            errors,
            next_id: AtomicU64::new(1),
            log,
            _child: Mutex::new(child),
        })
    }

    /// A new window showing `url`, with errors recorded.
    pub async fn open(&'static self, url: &str) -> Page {
        let target = self
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "newWindow": true }),
            )
            .await;
        let target = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let page = Page {
            browser: self,
            session,
            target,
        };
        page.call("Runtime.enable", json!({})).await;
        page.call("Log.enable", json!({})).await;
        page.goto(url).await;
        page
    }

    /// One CDP command; panics on a protocol error or when the browser is gone.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = s.into();
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        {
            let mut w = self.writer.lock().unwrap();
            w.write_all(&bytes)
                .and_then(|()| w.flush())
                .unwrap_or_else(|e| panic!("{method}: the browser is gone ({e}); {}", self.tail()));
        }
        let answer = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer from the browser in 120 s"))
            .unwrap_or_else(|_| panic!("{method}: the browser exited; {}", self.tail()));
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    fn tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("its log ({}) ends:\n{tail}", self.log.display())
    }
}

/// Reads NUL-separated JSON messages: answers go to whoever waits for their id; page errors
/// are kept per session.
fn read_messages(reader: impl std::io::Read, pending: &Pending, errors: &Errors) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
        buf.pop_if(|b| *b == 0);
        if let Ok(message) = serde_json::from_slice::<Value>(&buf) {
            if let Some(id) = message["id"].as_u64() {
                if let Some(tx) = pending.lock().unwrap().remove(&id) {
                    let _ = tx.send(message);
                }
            } else if let Some(error) = page_error(&message) {
                let session = message["sessionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                errors
                    .lock()
                    .unwrap()
                    .entry(session)
                    .or_default()
                    .push(error);
            }
        }
        buf.clear();
    }
    // The browser is gone: waiting calls fail at once (their senders drop).
    pending.lock().unwrap().clear();
}

/// An uncaught exception or a console error, as one line.
fn page_error(message: &Value) -> Option<String> {
    let p = &message["params"];
    match message["method"].as_str()? {
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let text = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("?");
            Some(format!("uncaught: {text}"))
        }
        "Runtime.consoleAPICalled" if p["type"] == "error" => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    a["value"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| a["description"].as_str().map(str::to_string))
                        .unwrap_or_else(|| a["value"].to_string())
                })
                .collect();
            Some(format!("console.error: {}", args.join(" ")))
        }
        // Failed loads (the network source) are the console's business: a 404 from an
        // endpoint an older server lacks is expected and shown as such.
        "Log.entryAdded" if p["entry"]["level"] == "error" && p["entry"]["source"] != "network" => {
            Some(format!(
                "log: {}",
                p["entry"]["text"].as_str().unwrap_or("?")
            ))
        }
        _ => None,
    }
}

/// Removes the profiles of earlier runs whose process is gone.
fn remove_stale_profiles(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(PROFILE_PREFIX)
            .map(|rest| rest.trim_end_matches(".log"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

/// A key the tests press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Tab,
    ShiftTab,
    Enter,
}

/// One window of the shared browser; closed on drop.
pub struct Page {
    browser: &'static Browser,
    session: String,
    target: String,
}

impl Page {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Loads `url` (a new document).
    pub async fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Loads the page again, as the reload button would.
    pub async fn reload(&self) {
        self.call("Page.reload", json!({})).await;
    }

    /// The value of a JavaScript expression (awaited when it is a promise); panics when it
    /// throws.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression} threw: {e}\n{}", self.describe().await);
        }
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is truthy, checking every 50 ms
    /// inside the page, and returns its value; panics after `timeout`, saying `what` it
    /// waited for and what the page shows.
    pub async fn wait_for(&self, what: &str, condition: &str, timeout: Duration) -> Value {
        let ms = timeout.as_millis();
        let script = format!(
            "(async () => {{
               const deadline = Date.now() + {ms};
               for (;;) {{
                 let v = null;
                 try {{ v = ({condition}); }} catch (e) {{ v = null; }}
                 if (v) return v;
                 if (Date.now() > deadline) return null;
                 await new Promise((r) => setTimeout(r, 50));
               }}
             }})()"
        );
        let value = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": script, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        let v = &value["result"]["value"];
        if v.is_null() || v == &Value::Bool(false) {
            panic!(
                "waited {timeout:?} for {what} ({condition});\n{}",
                self.describe().await
            );
        }
        v.clone()
    }

    /// Presses and releases `key` in the focused element, as a keyboard would.
    pub async fn press(&self, key: Key) {
        let (name, code, text, modifiers) = match key {
            Key::Tab => ("Tab", 9, None, 0),
            Key::ShiftTab => ("Tab", 9, None, 8),
            Key::Enter => ("Enter", 13, Some("\r"), 0),
        };
        let mut down = json!({ "type": if text.is_some() { "keyDown" } else { "rawKeyDown" },
                               "key": name, "code": name, "modifiers": modifiers,
                               "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code });
        if let Some(t) = text {
            down["text"] = t.into();
            down["unmodifiedText"] = t.into();
        }
        self.call("Input.dispatchKeyEvent", down).await;
        let up = json!({ "type": "keyUp", "key": name, "code": name, "modifiers": modifiers,
                         "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code });
        self.call("Input.dispatchKeyEvent", up).await;
    }

    /// Types `text` into the focused element.
    pub async fn type_text(&self, text: &str) {
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Minimizes the page's window (the page becomes hidden, as in a background tab) or
    /// restores it.
    pub async fn set_minimized(&self, minimized: bool) {
        let window = self
            .browser
            .call(
                None,
                "Browser.getWindowForTarget",
                json!({ "targetId": self.target }),
            )
            .await;
        let state = if minimized { "minimized" } else { "normal" };
        self.browser
            .call(
                None,
                "Browser.setWindowBounds",
                json!({ "windowId": window["windowId"], "bounds": { "windowState": state } }),
            )
            .await;
    }

    /// The uncaught exceptions and console errors the page logged so far.
    pub fn errors(&self) -> Vec<String> {
        self.browser
            .errors
            .lock()
            .unwrap()
            .get(&self.session)
            .cloned()
            .unwrap_or_default()
    }

    /// The page's address and visible text, and its errors: for failure messages.
    pub async fn describe(&self) -> String {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": "[location.href, document.body ? document.body.innerText : '']",
                        "returnByValue": true }),
            )
            .await;
        let v = &r["result"]["value"];
        format!(
            "page {}:\n{}\nerrors: {:?}",
            v[0].as_str().unwrap_or("?"),
            v[1].as_str().unwrap_or(""),
            self.errors()
        )
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // Fire and forget: the answer is not waited for.
        let id = self.browser.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({ "id": id, "method": "Target.closeTarget",
                              "params": { "targetId": self.target } });
        if let Ok(mut bytes) = serde_json::to_vec(&message) {
            bytes.push(0);
            let _ = self.browser.writer.lock().unwrap().write_all(&bytes);
        }
    }
}
