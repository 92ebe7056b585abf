//! The fuzz targets that need a platform to answer: what tillflow reads back
//! from its own state (a source's stored checkpoint, a rotated refresh token)
//! and WooCommerce's webhook topics, each driven through the real source
//! against its in-process sandbox. The state file is outside input too — a
//! file edited by hand, restored from an old backup or damaged — so whatever
//! it holds must come back as a page or an error, never a panic or a read
//! that does not end.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tillflow_core::source::{Checkpoint, InboxItem, WebhookRequest, WebhookVerdict};
use tillflow_core::{Source, StateStore};
use tillflow_kit::SourceAccount;
use tillflow_kit::sandbox::{Sandbox, SandboxOptions};
use tillflow_runner::{accounts, config::Config, registry};
use tillflow_testkit::memory_store::MemoryStore;

/// One read of one page, however odd its checkpoint, ends well within this.
const ONE_READ: Duration = Duration::from_secs(60);

/// Every source sandbox, small, and a config naming each source after its
/// type (plus X-Series on rotating OAuth, `retail-pos-oauth`).
pub struct Platforms {
    runtime: tokio::runtime::Runtime,
    _sandboxes: Vec<Box<dyn Sandbox>>,
    config: Config,
}

impl Platforms {
    fn start() -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
        let (sandboxes, text) = runtime.block_on(async {
            let mut sandboxes = Vec::new();
            let mut text = String::new();
            for descriptor in registry::SOURCES {
                let Some(start) = descriptor.sandbox else { continue };
                let options = SandboxOptions { address: ([127, 0, 0, 1], 0).into(), customers: 6, orders: 24 };
                let sandbox = start(options).await.expect("a sandbox starts");
                let name = descriptor.type_name;
                text.push_str(&format!("[sources.{name}]\ntype = \"{name}\"\n{}\n", sandbox.connector_keys()));
                if name == "retail-pos" {
                    use tillflow_source_retail_pos::sandbox::{CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH_TOKEN};
                    text.push_str(&format!(
                        "[sources.retail-pos-oauth]\ntype = \"retail-pos\"\ndomain_prefix = \"sandbox\"\nbase_url = \"{}\"\n\
                         client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{FIRST_REFRESH_TOKEN}\"\n\
                         currency = \"NZD\"\n\n",
                        sandbox.base_url()
                    ));
                }
                sandboxes.push(sandbox);
            }
            (sandboxes, text)
        });
        let config = Config::parse(Path::new("fuzz.toml"), &text, &|_| None)
            .unwrap_or_else(|e| panic!("the sandboxes' config parses: {e}\n{text}"));
        Self { runtime, _sandboxes: sandboxes, config }
    }

    /// Every source account, opened on `state`.
    fn sources(&self, state: Arc<dyn StateStore>) -> BTreeMap<String, Arc<dyn SourceAccount>> {
        let validated =
            accounts::validate(&self.config).unwrap_or_else(|e| panic!("the sandboxes' config is valid: {e:?}"));
        let opened = validated.open(&self.config, &state, |kind, _| kind == "sources");
        opened.unwrap_or_else(|e| panic!("the sandboxes' accounts open: {e:?}")).sources
    }
}

/// Each target gets its own sandboxes: one target's tokens and sales never
/// change what another's inputs meet.
fn platforms(cell: &'static OnceLock<Platforms>) -> &'static Platforms {
    cell.get_or_init(Platforms::start)
}

async fn read_once(source: &str, reader: &mut dyn Source, stream: &str, checkpoint: Option<&Checkpoint>) {
    let read = tokio::time::timeout(ONE_READ, reader.read(stream, checkpoint)).await;
    assert!(read.is_ok(), "{source}: reading one page of {stream} did not end within {ONE_READ:?}");
}

/// The first byte picks one stream of one source (in name order, the
/// streams in each source's order: `dutchie` products is 0, `woocommerce`
/// orders the last); the rest is the text of its stored checkpoint, parsed
/// as the state store parses it (what does not parse is the store's error)
/// and read back by that stream's next page. One page per input: the
/// sources pace their requests to the platforms' limits, sandboxes included.
pub fn stored_checkpoints(data: &[u8]) {
    static PLATFORMS: OnceLock<Platforms> = OnceLock::new();
    static STATE: OnceLock<Arc<MemoryStore>> = OnceLock::new();
    let Some((pick, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(value) = serde_json::from_str::<Value>(text) else { return };
    let checkpoint = Checkpoint(value);
    let platforms = platforms(&PLATFORMS);
    // One store for every input: a rotated refresh token must be the one the
    // next input's account refreshes with. Fresh accounts, so no reader
    // carries one input's caches into the next.
    let state = STATE.get_or_init(|| Arc::new(MemoryStore::new())).clone();
    let streams: Vec<(String, Arc<dyn SourceAccount>, String)> = platforms
        .sources(state)
        .into_iter()
        .flat_map(|(name, account)| {
            let streams = account.reader().streams();
            streams.into_iter().map(move |stream| (name.clone(), account.clone(), stream))
        })
        .collect();
    let (name, account, stream) = &streams[usize::from(*pick) % streams.len()];
    platforms.runtime.block_on(read_once(name, account.reader().as_mut(), stream, Some(&checkpoint)));
}

/// The bytes as the stored rotated refresh token of each rotating-OAuth
/// source (up to a newline) and the mark of the configured token it came
/// from (after it), read back by a fresh account's first request.
pub fn stored_secrets(data: &[u8]) {
    static PLATFORMS: OnceLock<Platforms> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (token, origin) = match text.split_once('\n') {
        Some((token, origin)) => (token, Some(origin)),
        None => (text, None),
    };
    let platforms = platforms(&PLATFORMS);
    platforms.runtime.block_on(async {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        for owner in ["lightspeed:lightspeed", "retail-pos:retail-pos-oauth"] {
            state.secret_put(owner, "refresh_token", token).await.expect("a memory store keeps secrets");
            if let Some(origin) = origin {
                state.secret_put(owner, "refresh_token_origin", origin).await.expect("a memory store keeps secrets");
            }
        }
        for (name, account) in platforms.sources(state) {
            if name == "lightspeed" || name == "retail-pos-oauth" {
                let mut reader = account.reader();
                let stream = reader.streams().into_iter().next().expect("a source has a stream");
                read_once(&name, reader.as_mut(), &stream, None).await;
            }
        }
    });
}

/// A WooCommerce delivery: the first line is its `X-WC-Webhook-Topic`, the
/// rest its body. Judged as the server judges it — unsigned, and signed with
/// the sandbox's webhook secret so the accepted path is reached — and, when
/// accepted, parsed by the source as a stored webhook would be.
pub fn woocommerce_webhook(data: &[u8]) {
    static PLATFORMS: OnceLock<Platforms> = OnceLock::new();
    static ACCOUNT: OnceLock<Arc<dyn SourceAccount>> = OnceLock::new();
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let topic = String::from_utf8_lossy(&data[..split]).into_owned();
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    let platforms = platforms(&PLATFORMS);
    let account = ACCOUNT.get_or_init(|| {
        let mut sources = platforms.sources(Arc::new(MemoryStore::new()));
        sources.remove("woocommerce").expect("the WooCommerce source")
    });
    let secret = tillflow_http::SecretString::from(tillflow_source_woocommerce::sandbox::WEBHOOK_SECRET);
    let signature = tillflow_http::webhook::sign_hmac_sha256_base64(&secret, &body);
    let headers =
        vec![("content-type".to_owned(), "application/json".to_owned()), ("x-wc-webhook-topic".to_owned(), topic)];
    let unsigned = WebhookRequest { headers: headers.clone(), body: body.clone() };
    assert!(
        matches!(account.verify_webhook(&unsigned), WebhookVerdict::Unauthorized | WebhookVerdict::Ping),
        "an unsigned delivery is never accepted"
    );
    let mut signed = headers;
    signed.push(("x-wc-webhook-signature".to_owned(), signature));
    let request = WebhookRequest { headers: signed, body };
    if account.verify_webhook(&request) != WebhookVerdict::Accept {
        return;
    }
    let item = InboxItem {
        id: 1,
        source: "woocommerce".into(),
        received_at: jiff::Timestamp::UNIX_EPOCH,
        headers: request.headers,
        body: request.body,
    };
    platforms.runtime.block_on(async {
        let mut reader = account.reader();
        let parsed = tokio::time::timeout(ONE_READ, reader.parse_webhook(&item)).await;
        assert!(parsed.is_ok(), "parsing a stored WooCommerce webhook did not end within {ONE_READ:?}");
    });
}
