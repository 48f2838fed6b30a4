//! The physical floor of the cached-token case (`benches/peers/run.sh` builds it in a temporary
//! cargo project with serde_json): a process that only reads this crate's token file and parses
//! it, with nothing else: no HTTP, no locking, no checks.
//!
//! ```sh
//! floor CACHE_DIR/<key>_tokens.json
//! ```

fn main() {
    let path = std::env::args().nth(1).expect("usage: floor TOKEN_FILE");
    let bytes = std::fs::read(&path).expect("cannot read the token file");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("not JSON");
    let token = value["tokens"]["access_token"]
        .as_str()
        .expect("no tokens.access_token");
    println!(
        "parsed {} bytes; access token of {} characters",
        bytes.len(),
        token.len()
    );
}
